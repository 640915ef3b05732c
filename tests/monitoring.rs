//! What monitoring reads, against the real server: INFO's sections and fields as Redis 7.0.15
//! prints them, SLOWLOG, LATENCY, CLIENT LIST's buffer fields, COMMAND INFO of the new commands.
#![cfg(not(feature = "loom"))]
mod common;

use common::Server;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every field of `INFO everything` from redis-server 7.0.15, in its order (per-command, per-error
/// and per-database lines aside).
const REDIS_7_INFO_FIELDS: &str = "\
    redis_version redis_git_sha1 redis_git_dirty redis_build_id redis_mode os arch_bits monotonic_clock \
    multiplexing_api atomicvar_api gcc_version process_id process_supervised run_id tcp_port \
    server_time_usec uptime_in_seconds uptime_in_days hz configured_hz lru_clock executable config_file \
    io_threads_active connected_clients cluster_connections maxclients client_recent_max_input_buffer \
    client_recent_max_output_buffer blocked_clients tracking_clients clients_in_timeout_table \
    used_memory used_memory_human used_memory_rss used_memory_rss_human used_memory_peak \
    used_memory_peak_human used_memory_peak_perc used_memory_overhead used_memory_startup \
    used_memory_dataset used_memory_dataset_perc allocator_allocated allocator_active allocator_resident \
    total_system_memory total_system_memory_human used_memory_lua used_memory_vm_eval \
    used_memory_lua_human used_memory_scripts_eval number_of_cached_scripts number_of_functions \
    number_of_libraries used_memory_vm_functions used_memory_vm_total used_memory_vm_total_human \
    used_memory_functions used_memory_scripts used_memory_scripts_human maxmemory maxmemory_human \
    maxmemory_policy allocator_frag_ratio allocator_frag_bytes allocator_rss_ratio allocator_rss_bytes \
    rss_overhead_ratio rss_overhead_bytes mem_fragmentation_ratio mem_fragmentation_bytes \
    mem_not_counted_for_evict mem_replication_backlog mem_total_replication_buffers mem_clients_slaves \
    mem_clients_normal mem_cluster_links mem_aof_buffer mem_allocator active_defrag_running \
    lazyfree_pending_objects lazyfreed_objects loading async_loading current_cow_peak current_cow_size \
    current_cow_size_age current_fork_perc current_save_keys_processed current_save_keys_total \
    rdb_changes_since_last_save rdb_bgsave_in_progress rdb_last_save_time rdb_last_bgsave_status \
    rdb_last_bgsave_time_sec rdb_current_bgsave_time_sec rdb_saves rdb_last_cow_size \
    rdb_last_load_keys_expired rdb_last_load_keys_loaded aof_enabled aof_rewrite_in_progress \
    aof_rewrite_scheduled aof_last_rewrite_time_sec aof_current_rewrite_time_sec \
    aof_last_bgrewrite_status aof_rewrites aof_rewrites_consecutive_failures aof_last_write_status \
    aof_last_cow_size module_fork_in_progress module_fork_last_cow_size total_connections_received \
    total_commands_processed instantaneous_ops_per_sec total_net_input_bytes total_net_output_bytes \
    total_net_repl_input_bytes total_net_repl_output_bytes instantaneous_input_kbps \
    instantaneous_output_kbps instantaneous_input_repl_kbps instantaneous_output_repl_kbps \
    rejected_connections sync_full sync_partial_ok sync_partial_err expired_keys expired_stale_perc \
    expired_time_cap_reached_count expire_cycle_cpu_milliseconds evicted_keys evicted_clients \
    total_eviction_exceeded_time current_eviction_exceeded_time keyspace_hits keyspace_misses \
    pubsub_channels pubsub_patterns pubsubshard_channels latest_fork_usec total_forks \
    migrate_cached_sockets slave_expires_tracked_keys active_defrag_hits active_defrag_misses \
    active_defrag_key_hits active_defrag_key_misses total_active_defrag_time current_active_defrag_time \
    tracking_total_keys tracking_total_items tracking_total_prefixes unexpected_error_replies \
    total_error_replies dump_payload_sanitizations total_reads_processed total_writes_processed \
    io_threaded_reads_processed io_threaded_writes_processed reply_buffer_shrinks reply_buffer_expands \
    role connected_slaves master_failover_state master_replid master_replid2 master_repl_offset \
    second_repl_offset repl_backlog_active repl_backlog_size repl_backlog_first_byte_offset \
    repl_backlog_histlen used_cpu_sys used_cpu_user used_cpu_sys_children used_cpu_user_children \
    used_cpu_sys_main_thread used_cpu_user_main_thread cluster_enabled";

fn info(c: &mut redis::Connection, section: &str) -> String {
    redis::cmd("INFO").arg(section).query(c).unwrap()
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
}

#[test]
fn info_everything_prints_every_redis_7_field_in_redis_order() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut c).unwrap();
    let text = info(&mut c, "everything");
    let ours: Vec<&str> = text.lines().filter_map(|l| l.split_once(':').map(|(k, _)| k)).collect();
    let want: Vec<&str> = REDIS_7_INFO_FIELDS.split_whitespace().collect();
    let ours_known: Vec<&str> = ours.iter().copied().filter(|k| want.contains(k)).collect();
    assert_eq!(ours_known, want, "every field, in Redis's order");
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        headers,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Commandstats",
            "# Errorstats",
            "# Latencystats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    assert!(field(&text, "cmdstat_set").unwrap().starts_with("calls=1,usec="), "{text}");
    assert!(field(&text, "latency_percentiles_usec_set").unwrap().starts_with("p50="), "{text}");
    let reads: u64 = field(&text, "total_reads_processed").unwrap().parse().unwrap();
    let writes: u64 = field(&text, "total_writes_processed").unwrap().parse().unwrap();
    assert!(reads >= 2 && writes >= 1, "the SET and this INFO were read, the SET answered: {reads} {writes}");
}

#[test]
fn errors_and_rejections_reach_errorstats_and_commandstats() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    c.cmds(&["SET", "k", "v"]);
    assert!(text(&c.cmds(&["INCR", "k"])).starts_with("-ERR value is not an integer"));
    assert!(text(&c.cmds(&["LPUSH", "k", "x"])).starts_with("-WRONGTYPE"));
    assert!(text(&c.cmds(&["GET"])).starts_with("-ERR wrong number"));
    let reply = text(&c.cmds(&["INFO", "commandstats"]));
    assert!(reply.contains("cmdstat_incr:calls=1,"), "{reply}");
    assert!(reply.contains(",rejected_calls=0,failed_calls=1\r\n"), "{reply}");
    assert!(reply.contains("cmdstat_get:calls=0,usec=0,usec_per_call=0.00,rejected_calls=1,failed_calls=0\r\n"));
    let reply = text(&c.cmds(&["INFO", "errorstats", "stats"]));
    assert!(reply.contains("errorstat_ERR:count=2\r\nerrorstat_WRONGTYPE:count=1\r\n"), "{reply}");
    assert!(reply.contains("total_error_replies:3\r\n"), "{reply}");
    // Runs only, as Redis: the harness's readiness PING, SET, INCR, LPUSH and the first INFO; not
    // the refused GET.
    assert!(reply.contains("total_commands_processed:5\r\n"), "{reply}");
    assert_eq!(c.cmds(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    let reply = text(&c.cmds(&["INFO", "commandstats"]));
    assert!(!reply.contains("cmdstat_incr") && reply.contains("cmdstat_config|resetstat:calls=1,"), "{reply}");
}

#[test]
fn slowlog_records_commands_with_client_address_and_name() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    assert_eq!(c.cmds(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["CLIENT", "SETNAME", "worker"]), b"+OK\r\n");
    let args: Vec<String> = (0..40).map(|i| i.to_string()).collect();
    let mut del = vec!["DEL"];
    del.extend(args.iter().map(String::as_str));
    c.cmds(&del);
    let addr = text(&c.cmds(&["CLIENT", "INFO"]));
    let addr = addr.split_whitespace().find_map(|f| f.strip_prefix("addr=")).unwrap().to_string();
    let reply = c.cmds(&["SLOWLOG", "GET", "2"]);
    let reply = text(&reply);
    assert!(reply.starts_with("*2\r\n*6\r\n:"), "{reply}");
    // Newest first: CLIENT INFO, then the DEL with 31 arguments and a note of the other 10.
    assert!(reply.contains("*32\r\n$3\r\nDEL\r\n$1\r\n0\r\n"), "{reply}");
    assert!(reply.contains("$23\r\n... (10 more arguments)\r\n"), "{reply}");
    assert!(reply.contains(&format!("${}\r\n{addr}\r\n$6\r\nworker\r\n", addr.len())), "{reply}");
    assert_eq!(c.cmds(&["SLOWLOG", "LEN"]), b":5\r\n");
    assert_eq!(c.cmds(&["SLOWLOG", "RESET"]), b"+OK\r\n");
    assert_eq!(c.cmds(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]), b"+OK\r\n");
    // Each command is measured against the threshold after it ran: the RESET is logged, the
    // CONFIG SET that disabled the log is not.
    let reply = text(&c.cmds(&["SLOWLOG", "GET"]));
    assert!(reply.starts_with("*1\r\n") && reply.contains("$7\r\nSLOWLOG\r\n$5\r\nRESET\r\n"), "{reply}");
}

#[test]
fn latency_histogram_doctor_and_errors_over_the_socket() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    c.cmds(&["SET", "k", "v"]);
    c.cmds(&["SET", "k", "w"]);
    let reply = text(&c.cmds(&["LATENCY", "HISTOGRAM", "set"]));
    assert!(reply.starts_with("*2\r\n$3\r\nset\r\n*4\r\n$5\r\ncalls\r\n:2\r\n$14\r\nhistogram_usec\r\n*"), "{reply}");
    assert!(reply.ends_with(":2\r\n"), "cumulative counts end with every call: {reply}");
    assert_eq!(c.cmds(&["LATENCY", "LATEST"]), b"*0\r\n");
    assert_eq!(c.cmds(&["LATENCY", "HISTORY", "command"]), b"*0\r\n");
    assert_eq!(c.cmds(&["LATENCY", "RESET"]), b":0\r\n");
    assert!(text(&c.cmds(&["LATENCY", "DOCTOR"])).contains("I'm sorry, Dave, I can't do that."));
    assert_eq!(c.cmds(&["LATENCY", "GRAPH", "command"]), b"-ERR No samples available for event 'command'\r\n");
    assert_eq!(c.cmds(&["LATENCY", "NOSUCH"]), b"-ERR unknown subcommand 'NOSUCH'. Try LATENCY HELP.\r\n");
    assert_eq!(c.cmds(&["CONFIG", "SET", "latency-monitor-threshold", "1"]), b"+OK\r\n");
    assert!(text(&c.cmds(&["LATENCY", "DOCTOR"])).contains("Dave, no latency spike was observed"));
}

#[test]
fn client_list_reports_buffers_transaction_and_command_as_redis() {
    let s = Server::start(&[]);
    let mut a = s.raw();
    assert_eq!(a.cmds(&["MULTI"]), b"+OK\r\n");
    assert_eq!(a.cmds(&["SET", "key", "value"]), b"+QUEUED\r\n");
    let mut b = s.raw();
    let list = text(&b.cmds(&["CLIENT", "LIST"]));
    let lines: Vec<&str> = list.lines().filter(|l| l.starts_with("id=")).collect();
    assert_eq!(lines.len(), 2, "{list}");
    let names: Vec<&str> = lines[1].split(' ').map(|f| f.split_once('=').unwrap().0).collect();
    assert_eq!(
        names.join(" "),
        "id addr laddr fd name age idle flags db sub psub ssub multi qbuf qbuf-free argv-mem multi-mem rbs rbp obl \
         oll omem tot-mem events cmd user redir resp"
    );
    let get =
        |line: &str, k: &str| line.split(' ').find_map(|f| f.strip_prefix(k)?.strip_prefix('=')).unwrap().to_string();
    let (txn, me) = (lines[0], lines[1]);
    assert_eq!((get(txn, "flags"), get(txn, "multi"), get(txn, "multi-mem")), ("x".into(), "1".into(), "11".into()));
    assert_eq!((get(txn, "cmd"), get(txn, "argv-mem"), get(txn, "qbuf")), ("set".into(), "0".into(), "0".into()));
    // The caller's own query is in its buffer while CLIENT LIST runs, as in Redis: 26 bytes,
    // arguments of 6 + 4 bytes.
    assert_eq!(
        (get(me, "qbuf"), get(me, "argv-mem"), get(me, "cmd")),
        ("26".into(), "10".into(), "client|list".into())
    );
    assert!(get(me, "qbuf-free").parse::<u64>().unwrap() > 0);
    assert_eq!((get(me, "flags"), get(me, "multi"), get(me, "events")), ("N".into(), "-1".into(), "r".into()));
    let tot: u64 = get(me, "tot-mem").parse().unwrap();
    assert!(tot > 16 * 1024, "buffers and the reply chunk: {tot}");
    assert_eq!(a.cmds(&["EXEC"]), b"*1\r\n+OK\r\n");
    let info = text(&b.cmds(&["CLIENT", "INFO"]));
    assert!(info.contains(" multi=-1 ") && info.contains(" cmd=client|info "), "{info}");
}

#[test]
fn command_info_and_docs_describe_slowlog_and_latency() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let reply = text(&c.cmds(&["COMMAND", "INFO", "slowlog", "latency"]));
    assert!(reply.starts_with("*2\r\n*10\r\n$7\r\nslowlog\r\n:-2\r\n"), "{reply}");
    assert!(reply.contains("$7\r\nlatency\r\n:-2\r\n"), "{reply}");
    let docs = text(&c.cmds(&["COMMAND", "DOCS", "latency"]));
    assert!(docs.contains("latency|histogram") && docs.contains("latency|doctor"), "{docs}");
    let list = text(&c.cmds(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "slowlog|*"]));
    assert_eq!(list.matches("slowlog|").count(), 4, "{list}");
}

#[test]
fn client_list_shows_a_blocked_client_with_its_command_and_an_empty_query_buffer() {
    let s = Server::start(&[]);
    let mut blocked = s.raw();
    blocked.send(b"*3\r\n$5\r\nBLPOP\r\n$7\r\nnothing\r\n$1\r\n0\r\n");
    let mut c = s.raw();
    let line = (0..500)
        .find_map(|_| {
            let list = text(&c.cmds(&["CLIENT", "LIST"]));
            let line = list.lines().find(|l| l.contains(" flags=b ")).map(str::to_string);
            if line.is_none() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            line
        })
        .expect("the BLPOP client shows as blocked");
    for want in [" qbuf=0 ", " argv-mem=13 ", " multi=-1 ", " cmd=blpop "] {
        assert!(line.contains(want), "{want} in {line}");
    }
    assert_eq!(c.cmds(&["RPUSH", "nothing", "x"]), b":1\r\n");
    assert_eq!(blocked.reply(), b"*2\r\n$7\r\nnothing\r\n$1\r\nx\r\n");
    let stats = text(&c.cmds(&["INFO", "commandstats"]));
    assert!(stats.contains("cmdstat_blpop:calls=1,"), "a blocked command counts once: {stats}");
}

#[test]
fn info_clients_reports_the_largest_query_buffer_now() {
    let s = Server::start(&[]);
    let mut c = s.raw();
    let reply = text(&c.cmds(&["INFO", "clients"]));
    // The caller's own request is in its buffer while INFO runs: *2 $4 INFO $7 clients = 27 bytes.
    assert!(reply.contains("\r\nclient_recent_max_input_buffer:27\r\n"), "{reply}");
    assert!(reply.contains("\r\nclient_recent_max_output_buffer:0\r\n"), "{reply}");
}

/// A connection sums its pipelined calls of one command before adding them to INFO's counters
/// (`CommandStats::record_pending`): INFO, LATENCY HISTOGRAM and a transaction's INFO later in the
/// same pipeline, and another client once the replies arrived, see every call counted (as Redis,
/// which counts each call as it ends).
#[test]
fn pipelined_calls_are_counted_before_info_and_before_their_replies() {
    let server = Server::start(&[]);
    let mut c = server.raw();
    let mut batch = Vec::new();
    let enc = |args: &[&str]| {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
        }
        out
    };
    for i in 0..5 {
        batch.extend(enc(&["SET", &format!("k{i}"), "v"]));
    }
    batch.extend(enc(&["GET", "k0"]));
    batch.extend(enc(&["INFO", "commandstats"]));
    batch.extend(enc(&["INFO", "commandstats"]));
    batch.extend(enc(&["GET", "k1"]));
    batch.extend(enc(&["MULTI"]));
    batch.extend(enc(&["GET", "k2"]));
    batch.extend(enc(&["INFO", "commandstats"]));
    batch.extend(enc(&["EXEC"]));
    batch.extend(enc(&["LATENCY", "HISTOGRAM", "get"]));
    c.send(&batch);
    let replies: Vec<String> = (0..14).map(|_| text(&c.reply())).collect();
    let calls = |info: &str, cmd: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|r| r.split(',').next()?.parse::<u64>().ok())
    };
    let first = &replies[6];
    assert_eq!((calls(first, "set"), calls(first, "get"), calls(first, "info")), (Some(5), Some(1), None), "{first}");
    let second = &replies[7];
    assert_eq!(calls(second, "info"), Some(1), "the first INFO counts before the second runs: {second}");
    // Inside EXEC: the GET before it and the GET queued in it.
    let in_exec = &replies[12];
    assert_eq!(calls(in_exec, "get"), Some(3), "{in_exec}");
    assert!(replies[13].contains("get") && replies[13].contains("calls"), "{}", replies[13]);
    // Another client, once the replies arrived.
    let mut other = server.client();
    let info = info(&mut other, "commandstats");
    assert_eq!((calls(&info, "set"), calls(&info, "get"), calls(&info, "exec")), (Some(5), Some(3), Some(1)), "{info}");
}
