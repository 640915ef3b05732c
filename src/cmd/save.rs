//! `SAVE` and `BGSAVE [SCHEDULE]`: write the RDB file now, in the foreground or on a background
//! thread (the work is in `rdb::persist`). `LASTSAVE` is in `server`.

use bytes::Bytes;

use super::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::rdb::persist::{self, Bgsave};
use crate::resp::Frame;

/// `SAVE`: `+OK` once the file is on disk; `-ERR` when it could not be written.
pub fn save(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    persist::save(ctx.shared).map_err(Error::Raw)?;
    Ok(Frame::ok())
}

/// `BGSAVE [SCHEDULE]`.
pub fn bgsave(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let schedule = match argv.len() {
        1 => false,
        2 if is_opt(&argv[1], "schedule") => true,
        _ => return Err(Error::Syntax),
    };
    match persist::bgsave(ctx.shared, schedule).map_err(Error::Raw)? {
        Bgsave::Started => Ok(Frame::simple("Background saving started")),
        Bgsave::Scheduled => Ok(Frame::simple("Background saving scheduled")),
    }
}
