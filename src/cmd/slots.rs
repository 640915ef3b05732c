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
}
