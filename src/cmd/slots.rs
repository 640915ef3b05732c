//! Statistics slots: the index of every command and container subcommand in
//! [`crate::monitor::CommandStats`]. Rows of [`COMMANDS`] come first, in table order, then each
//! container's subcommands ([`SUB_TABLES`]), so that the dispatcher finds a slot by address
//! arithmetic, without hashing a name per call.

use super::server::SubSpec;
use super::{COMMANDS, CommandSpec};

/// Every container's subcommand table, in slot order after the command rows.
pub fn sub_tables() -> [&'static [SubSpec]; 12] {
    use super::server::{client::CLIENT_SUBS, config::CONFIG_SUBS, introspect::COMMAND_SUBS};
    use super::server::{latency::LATENCY_SUBS, slowlog::SLOWLOG_SUBS};
    use super::stream::{XGROUP_SUBS, XINFO_SUBS};
    use crate::script::{eval::SCRIPT_SUBS, function::FUNCTION_SUBS};
    [
        CLIENT_SUBS,
        CONFIG_SUBS,
        COMMAND_SUBS,
        SLOWLOG_SUBS,
        LATENCY_SUBS,
        crate::cmd::keys::OBJECT_SUBS,
        SCRIPT_SUBS,
        FUNCTION_SUBS,
        XGROUP_SUBS,
        XINFO_SUBS,
        super::pubsub::PUBSUB_SUBS,
        super::server::memory::MEMORY_SUBS,
    ]
}

/// The slot of a row of [`COMMANDS`].
pub fn spec_slot(spec: &CommandSpec) -> usize {
    let base = COMMANDS.as_ptr() as usize;
    (std::ptr::from_ref(spec) as usize).wrapping_sub(base) / size_of::<CommandSpec>()
}

/// The slot of a subcommand row of one of [`sub_tables`].
pub fn sub_slot(sub: &SubSpec) -> usize {
    let addr = std::ptr::from_ref(sub) as usize;
    let mut base = COMMANDS.len();
    for table in sub_tables() {
        let start = table.as_ptr() as usize;
        if (start..start + size_of_val(table)).contains(&addr) {
            return base + (addr - start) / size_of::<SubSpec>();
        }
        base += table.len();
    }
    usize::MAX
}

/// Every slot's name (`get`, `config|set`), by slot.
pub fn slot_names() -> impl Iterator<Item = &'static str> {
    COMMANDS.iter().map(|c| c.name).chain(sub_tables().into_iter().flatten().map(|s| s.name))
}

/// The slot of a command or subcommand named as Redis names it (`get`, `CONFIG|SET`).
pub fn slot_of_name(name: &[u8]) -> Option<usize> {
    slot_names().position(|n| n.as_bytes().eq_ignore_ascii_case(name))
}

/// Redis's `lookupCommand` on a command line (what scripts and `redis.acl_check_cmd` resolve):
/// the command's row and the arity that applies to it, a container's subcommand's own. `None` for
/// an unknown command and for a container's unknown subcommand (a client calling one directly gets
/// "unknown subcommand" from the container's dispatch instead).
pub fn lookup_command(name: &[u8], sub: Option<&[u8]>) -> Option<(&'static CommandSpec, i32)> {
    let spec = super::lookup(name)?;
    let Some(sub) = sub else { return Some((spec, spec.arity)) };
    let prefix = |s: &SubSpec| s.name.split_once('|').map(|(c, _)| c);
    let Some(table) = sub_tables().into_iter().find(|t| t.first().and_then(prefix) == Some(spec.name)) else {
        return Some((spec, spec.arity));
    };
    let found = table.iter().find(|s| s.short().as_bytes().eq_ignore_ascii_case(sub))?;
    Some((spec, found.arity))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::monitor::cmdstats::MAX_SLOTS;

    #[test]
    fn every_command_and_subcommand_has_its_own_slot_within_the_stats_table() {
        let names: Vec<&str> = slot_names().collect();
        assert!(names.len() <= MAX_SLOTS, "{} slots: raise MAX_SLOTS", names.len());
        for (i, spec) in COMMANDS.iter().enumerate() {
            assert_eq!(spec_slot(spec), i);
        }
        for table in sub_tables() {
            for sub in table {
                assert_eq!(names[sub_slot(sub)], sub.name);
            }
        }
        assert_eq!(slot_of_name(b"CONFIG|set").map(|s| names[s]), Some("config|set"));
        assert_eq!(slot_of_name(b"nosuch"), None);
    }

    #[test]
    fn lookup_command_resolves_a_containers_subcommand_and_its_arity() {
        assert_eq!(lookup_command(b"GET", None).map(|(s, a)| (s.name, a)), Some(("get", 2)));
        assert_eq!(lookup_command(b"get", Some(b"x")).map(|(s, a)| (s.name, a)), Some(("get", 2)));
        assert_eq!(lookup_command(b"config", None).map(|(s, a)| (s.name, a)), Some(("config", -2)));
        assert_eq!(lookup_command(b"CONFIG", Some(b"Get")).map(|(s, a)| (s.name, a)), Some(("config", -3)));
        assert!(lookup_command(b"config", Some(b"bogus")).is_none());
        assert!(lookup_command(b"script", Some(b"65536")).is_none());
        assert!(lookup_command(b"nosuch", None).is_none());
    }
}
