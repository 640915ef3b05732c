//! Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB. The registry and
//! the outboxes are in `crate::pubsub`. Mirrors Redis's `pubsub.c`.

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::server::{SubSpec, help_reply, run_subcommand};
use super::{Ctx, is_opt};
use crate::error::{Error, Result};
use crate::pubsub::Kind;
use crate::resp::Frame;

/// The commands a RESP2 client in subscribed mode may run (Redis's check in `processCommand`).
pub fn allowed_in_subscribed_mode(name: &str) -> bool {
    matches!(
        name,
        "subscribe"
            | "unsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "ssubscribe"
            | "sunsubscribe"
            | "ping"
            | "quit"
            | "reset"
    )
}

/// The error a RESP2 client in subscribed mode gets for any other command.
pub fn subscribed_mode_error(name: &str) -> Error {
    Error::err(format!(
        "Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
    ))
}

/// Mirror the client's subscription counts for CLIENT LIST (`sub=`, `psub=`, `ssub=`).
fn note_counts(ctx: &Ctx) {
    let (sub, psub, ssub) = ctx.client.subs.counts();
    let info = &ctx.client.info;
    info.sub.store(sub, Relaxed);
    info.psub.store(psub, Relaxed);
    info.ssub.store(ssub, Relaxed);
}

fn subscribe_kind(ctx: &mut Ctx, kind: Kind, names: &[Bytes]) -> Result<Frame> {
    let resp = ctx.client.resp;
    let f = ctx.client.subs.subscribe(&ctx.shared.pubsub, kind, names, resp);
    note_counts(ctx);
    Ok(f)
}

fn unsubscribe_kind(ctx: &mut Ctx, kind: Kind, names: &[Bytes]) -> Result<Frame> {
    let resp = ctx.client.resp;
    let f = ctx.client.subs.unsubscribe(&ctx.shared.pubsub, kind, names, resp);
    note_counts(ctx);
    Ok(f)
}

/// `SUBSCRIBE channel [channel ...]`.
pub fn subscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    subscribe_kind(ctx, Kind::Channel, &argv[1..])
}

/// `UNSUBSCRIBE [channel ...]`.
pub fn unsubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    unsubscribe_kind(ctx, Kind::Channel, &argv[1..])
}

/// `PSUBSCRIBE pattern [pattern ...]`.
pub fn psubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    subscribe_kind(ctx, Kind::Pattern, &argv[1..])
}

/// `PUNSUBSCRIBE [pattern ...]`.
pub fn punsubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    unsubscribe_kind(ctx, Kind::Pattern, &argv[1..])
}

/// `SSUBSCRIBE shardchannel [shardchannel ...]`.
pub fn ssubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    subscribe_kind(ctx, Kind::Shard, &argv[1..])
}

/// `SUNSUBSCRIBE [shardchannel ...]`.
pub fn sunsubscribe(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    unsubscribe_kind(ctx, Kind::Shard, &argv[1..])
}

/// `PUBLISH channel message`: the number of deliveries. On a primary with replicas the message
/// goes down the replication stream (not the AOF), so the replicas' subscribers get it too, as
/// Redis's `forceCommandPropagation(c, PROPAGATE_REPL)` (Sentinel's `__sentinel__:hello` relies
/// on it). A replica publishes what its primary sends through the normal command path.
pub fn publish(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let n = ctx.shared.pubsub.publish(&argv[1], &argv[2]);
    // Inside MULTI/EXEC or a script: at its place in the transaction's block.
    ctx.shared.ks.propagate_repl(ctx.client.db, &[b"PUBLISH", &argv[1], &argv[2]]);
    Ok(Frame::Integer(n as i64))
}

/// `SPUBLISH shardchannel message` (propagated to the replicas as PUBLISH is, as Redis does
/// outside cluster mode).
pub fn spublish(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    let n = ctx.shared.pubsub.spublish(&argv[1], &argv[2]);
    ctx.shared.ks.propagate_repl(ctx.client.db, &[b"SPUBLISH", &argv[1], &argv[2]]);
    Ok(Frame::Integer(n as i64))
}

pub(crate) static PUBSUB_SUBS: &[SubSpec] = &[
    SubSpec { name: "pubsub|channels", arity: -2, handler: pubsub_channels },
    SubSpec { name: "pubsub|numpat", arity: 2, handler: pubsub_numpat },
    SubSpec { name: "pubsub|numsub", arity: -2, handler: pubsub_numsub },
    SubSpec { name: "pubsub|shardchannels", arity: -2, handler: pubsub_shardchannels },
    SubSpec { name: "pubsub|shardnumsub", arity: -2, handler: pubsub_shardnumsub },
    SubSpec { name: "pubsub|help", arity: 2, handler: pubsub_help },
];

/// `PUBSUB CHANNELS|NUMPAT|NUMSUB|SHARDCHANNELS|SHARDNUMSUB|HELP ...`.
pub fn pubsub(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    run_subcommand(ctx, argv, PUBSUB_SUBS)
}

fn channels_of(ctx: &Ctx, kind: Kind, argv: &[Bytes]) -> Result<Frame> {
    if argv.len() > 3 {
        return Err(Error::err(format!(
            "unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&argv[1])
        )));
    }
    Ok(Frame::bulk_array(ctx.shared.pubsub.channels(kind, argv.get(2).map(|p| &p[..]))))
}

fn numsub_of(ctx: &Ctx, kind: Kind, argv: &[Bytes]) -> Frame {
    let hub = &ctx.shared.pubsub;
    Frame::Array(
        argv[2..].iter().flat_map(|c| [Frame::Bulk(c.clone()), Frame::Integer(hub.numsub(kind, c) as i64)]).collect(),
    )
}

fn pubsub_channels(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    channels_of(ctx, Kind::Channel, argv)
}

fn pubsub_shardchannels(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    channels_of(ctx, Kind::Shard, argv)
}

fn pubsub_numsub(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(numsub_of(ctx, Kind::Channel, argv))
}

fn pubsub_shardnumsub(ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    Ok(numsub_of(ctx, Kind::Shard, argv))
}

fn pubsub_numpat(ctx: &mut Ctx, _argv: &[Bytes]) -> Result<Frame> {
    Ok(Frame::Integer(ctx.shared.pubsub.numpat() as i64))
}

fn pubsub_help(_ctx: &mut Ctx, argv: &[Bytes]) -> Result<Frame> {
    debug_assert!(is_opt(&argv[1], "help"));
    Ok(help_reply(
        &argv[0],
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use crate::cmd::testing::{Harness, bulk, err, int};
    use crate::resp::Frame;

    fn push(items: Vec<Frame>) -> Frame {
        Frame::Push(items)
    }

    #[test]
    fn subscribe_confirms_each_channel_with_the_running_count() {
        let mut h = Harness::new();
        assert_eq!(
            h.run(&["subscribe", "a", "b", "a"]),
            Frame::Seq(vec![
                push(vec![bulk("subscribe"), bulk("a"), int(1)]),
                push(vec![bulk("subscribe"), bulk("b"), int(2)]),
                push(vec![bulk("subscribe"), bulk("a"), int(2)]),
            ])
        );
        assert_eq!(h.run(&["ssubscribe", "s"]), Frame::Seq(vec![push(vec![bulk("ssubscribe"), bulk("s"), int(1)])]));
        assert_eq!(
            h.run(&["get", "x"]),
            err(
                "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
            )
        );
        assert_eq!(h.run(&["ping"]), Frame::Array(vec![bulk("pong"), bulk("")]));
        assert_eq!(h.run(&["punsubscribe"]), Frame::Seq(vec![push(vec![bulk("punsubscribe"), Frame::Null, int(2)])]));
        h.run(&["unsubscribe"]);
        h.run(&["sunsubscribe"]);
        assert_eq!(h.run(&["ping"]), Frame::simple("PONG"));
    }

    #[test]
    fn pubsub_introspection_counts_channels_patterns_and_subscribers() {
        let mut h = Harness::new();
        h.run(&["subscribe", "news.1", "news.2"]);
        h.run(&["psubscribe", "news.*"]);
        let mut other = h.other_client();
        assert_eq!(other.run(&["publish", "news.1", "hi"]), int(2));
        assert_eq!(other.run(&["publish", "nothing", "hi"]), int(0));
        assert_eq!(other.run(&["pubsub", "numpat"]), int(1));
        assert_eq!(
            other.run(&["pubsub", "numsub", "news.1", "x"]),
            Frame::Array(vec![bulk("news.1"), int(1), bulk("x"), int(0)])
        );
        let Frame::Array(mut chans) = other.run(&["pubsub", "channels", "*.1"]) else { panic!() };
        chans.sort_by_key(|f| format!("{f:?}"));
        assert_eq!(chans, vec![bulk("news.1")]);
        assert_eq!(
            other.run(&["pubsub", "channels", "a", "b"]),
            err("ERR unknown subcommand or wrong number of arguments for 'channels'. Try PUBSUB HELP.")
        );
        assert_eq!(
            other.run(&["pubsub", "numpat", "x"]),
            err("ERR wrong number of arguments for 'pubsub|numpat' command")
        );
        assert_eq!(other.run(&["pubsub", "shardnumsub", "x"]), Frame::Array(vec![bulk("x"), int(0)]));
    }

    fn text(f: Frame) -> String {
        match f {
            Frame::Bulk(b) | Frame::Verbatim(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn info_and_client_list_count_subscriptions() {
        let mut h = Harness::new();
        h.run(&["subscribe", "a", "b"]);
        h.run(&["psubscribe", "p*"]);
        h.run(&["ssubscribe", "s"]);
        let mut other = h.other_client();
        let info = text(other.run(&["info", "stats"]));
        for field in ["pubsub_channels:2\r\n", "pubsub_patterns:1\r\n", "pubsubshard_channels:1\r\n"] {
            assert!(info.contains(field), "{field} in {info}");
        }
        let list = text(other.run(&["client", "list"]));
        assert!(list.contains(" flags=P db=0 sub=2 psub=1 ssub=1 "), "{list}");
        let pubsub_only = text(other.run(&["client", "list", "type", "pubsub"]));
        assert_eq!(pubsub_only.lines().count(), 1, "{pubsub_only}");
        let normal_only = text(other.run(&["client", "list", "type", "normal"]));
        assert!(normal_only.lines().count() == 1 && normal_only.contains("flags=N"), "{normal_only}");
        h.run(&["reset"]);
        let list = text(other.run(&["client", "list"]));
        assert!(list.lines().all(|l| l.contains(" sub=0 psub=0 ssub=0 ")), "{list}");
        assert!(text(other.run(&["info", "stats"])).contains("pubsub_channels:0\r\n"));
    }
}
