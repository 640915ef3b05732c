//! `CLIENT TRACKING`, `CLIENT CACHING`, `CLIENT GETREDIR`, `CLIENT TRACKINGINFO`: client-side
//! caching's commands, with Redis 7.0's replies and error texts (`networking.c`'s
//! `clientCommand`). The tables and the invalidations are in [`crate::tracking`].

use bytes::Bytes;

use crate::cmd::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::resp::Frame;
use crate::tracking::{Options, Tracking, flag};

/// `CLIENT TRACKING ON|OFF [REDIRECT id] [BCAST] [PREFIX p ...] [OPTIN] [OPTOUT] [NOLOOP]`.
pub fn client_tracking(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let mut redirect_id: i64 = 0;
    let mut redirect = None;
    let mut opts = 0u32;
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut j = 3;
    while j < argv.len() {
        let more = j + 1 < argv.len();
        let a = &argv[j];
        if is_opt(a, "redirect") && more {
            j += 1;
            if redirect_id != 0 {
                return Err(Error::err("A client can only redirect to a single other client"));
            }
            redirect_id = crate::cmd::arg_i64(&argv[j])?;
            // The target must exist now (it may go later: the redirect is then broken).
            let found = u64::try_from(redirect_id)
                .ok()
                .and_then(|id| ctx.shared.clients.map.lock().unwrap_or_else(|e| e.into_inner()).get(&id).cloned());
            match found {
                Some(c) => redirect = Some(c),
                None => return Err(Error::err("The client ID you want redirect to does not exist")),
            }
        } else if is_opt(a, "bcast") {
            opts |= flag::BCAST;
        } else if is_opt(a, "optin") {
            opts |= flag::OPTIN;
        } else if is_opt(a, "optout") {
            opts |= flag::OPTOUT;
        } else if is_opt(a, "noloop") {
            opts |= flag::NOLOOP;
        } else if is_opt(a, "prefix") && more {
            j += 1;
            prefixes.push(argv[j].clone());
        } else {
            return Err(Error::Syntax);
        }
        j += 1;
    }
    if is_opt(&argv[2], "off") {
        ctx.client.tracking.disable();
        return Ok(Frame::ok());
    }
    if !is_opt(&argv[2], "on") {
        return Err(Error::Syntax);
    }
    let cur = ctx.client.info.tracking.flags();
    if opts & flag::BCAST == 0 && !prefixes.is_empty() {
        return Err(Error::err("PREFIX option requires BCAST mode to be enabled"));
    }
    if cur & flag::ON != 0 && (cur & flag::BCAST != 0) != (opts & flag::BCAST != 0) {
        return Err(Error::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it \
             with a different mode.",
        ));
    }
    if opts & flag::BCAST != 0 && opts & (flag::OPTIN | flag::OPTOUT) != 0 {
        return Err(Error::err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if opts & flag::OPTIN != 0 && opts & flag::OPTOUT != 0 {
        return Err(Error::err("You can't specify both OPTIN mode and OPTOUT mode"));
    }
    if (opts & flag::OPTIN != 0 && cur & flag::OPTOUT != 0) || (opts & flag::OPTOUT != 0 && cur & flag::OPTIN != 0) {
        return Err(Error::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it \
             with a different mode.",
        ));
    }
    // Redis 7.0.15 stops at an overlap with the client's prefixes or among the first given one's;
    // an overlap found for a later prefix replies the error and goes on to enable tracking and
    // reply +OK too (`checkPrefixCollisionsOrReply` returns the index, non-zero). As Redis.
    let mut late_error = None;
    if opts & flag::BCAST != 0
        && let Some((at, existing, text)) = Tracking::prefix_collision(&ctx.client.tracking.prefixes, &prefixes)
    {
        if at == 0 || existing {
            return Err(Error::err(text));
        }
        late_error = Some(text);
    }
    let info = ctx.client.info.clone();
    let reg = ctx.shared.ks.tracking().clone();
    ctx.client.tracking.enable(
        &reg,
        &info,
        Options { redirect, redirect_id: redirect_id as u64, flags: opts, prefixes },
    );
    Ok(match late_error {
        Some(text) => Frame::Seq(vec![Error::err(text).to_frame(), Frame::ok()]),
        None => Frame::ok(),
    })
}

/// `CLIENT CACHING YES|NO`: track (OPTIN) or not (OPTOUT) the keys of the next command.
pub fn client_caching(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let f = ctx.client.info.tracking.flags();
    if f & flag::ON == 0 {
        return Err(Error::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    }
    if is_opt(&argv[2], "yes") {
        if f & flag::OPTIN == 0 {
            return Err(Error::err("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if is_opt(&argv[2], "no") {
        if f & flag::OPTOUT == 0 {
            return Err(Error::err("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(Error::Syntax);
    }
    ctx.client.tracking.caching = true;
    Ok(Frame::ok())
}

/// `CLIENT GETREDIR`: the redirect id while tracking (0: none), -1 when not tracking.
pub fn client_getredir(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(ctx.client.info.tracking.redir()))
}

/// `CLIENT TRACKINGINFO`: flags (a set), redirect, prefixes.
pub fn client_trackinginfo(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    let p = &ctx.client.info.tracking;
    let f = p.flags();
    let caching = ctx.client.tracking.caching;
    let mut flags = vec![if f & flag::ON != 0 { "on" } else { "off" }];
    if f & flag::BCAST != 0 {
        flags.push("bcast");
    }
    if f & flag::OPTIN != 0 {
        flags.push("optin");
        if caching {
            flags.push("caching-yes");
        }
    }
    if f & flag::OPTOUT != 0 {
        flags.push("optout");
        if caching {
            flags.push("caching-no");
        }
    }
    if f & flag::NOLOOP != 0 {
        flags.push("noloop");
    }
    if f & flag::BROKEN_REDIR != 0 {
        flags.push("broken_redirect");
    }
    let bulk = |s: &'static str| Frame::Bulk(Bytes::from_static(s.as_bytes()));
    Ok(Frame::Map(vec![
        (bulk("flags"), Frame::Set(flags.into_iter().map(bulk).collect())),
        (bulk("redirect"), Frame::Integer(p.redir())),
        (bulk("prefixes"), Frame::Array(ctx.client.tracking.prefixes.iter().cloned().map(Frame::Bulk).collect())),
    ]))
}
