//! list commands (stubs: being implemented).

use bytes::Bytes;

use super::Ctx;
use crate::error::{Error, Result};
use crate::resp::Frame;

pub fn lindex(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn linsert(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn llen(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lmove(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lpop(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lpos(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lpush(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lpushx(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lrange(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lrem(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn lset(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn ltrim(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn rpop(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn rpoplpush(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn rpush(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}

pub fn rpushx(_ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Err(Error::err("not implemented yet"))
}
