//! server commands (stubs: being implemented).

use bytes::Bytes;

use super::Ctx;
use crate::error::{Error, Result};
use crate::resp::Frame;

pub fn bgrewriteaof(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn client(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn command(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn config(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn echo(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn hello(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn info(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lastsave(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn ping(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn quit(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn select(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn shutdown(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn time(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}
