//! `flurrydb-server [config-file] [--name value ...]`: the server binary.

use flurrydb::config::{Cli, Invocation};
use flurrydb::state::Shared;
use flurrydb::{notice, server};

/// Longest wait at shutdown for connections to finish their batch and deliver its replies.
const SHUTDOWN_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// used_memory (INFO, maxmemory) comes from allocator statistics, as in Redis.
#[global_allocator]
static ALLOCATOR: flurrydb::memory::CountingAllocator = flurrydb::memory::CountingAllocator;

fn main() {
    let cli = match Cli::from_env() {
        Invocation::Run(cli) => cli,
        Invocation::Help => {
            eprintln!("{}", flurrydb::config::cli::USAGE);
            std::process::exit(1);
        }
        Invocation::Version => {
            println!("flurrydb-server v={}", env!("CARGO_PKG_VERSION"));
            std::process::exit(0);
        }
    };
    let cfg = match cli.into_config() {
        Ok(c) => c,
        Err(e) => {
            // Redis prints its "*** FATAL CONFIG FILE ERROR ***" block on stderr, not as a log line.
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    flurrydb::log::init(&cfg.loglevel, &cfg.logfile);
    if let Err(e) = std::fs::create_dir_all(&cfg.dir).and_then(|_| std::env::set_current_dir(&cfg.dir)) {
        flurrydb::warning!("Can't chdir to '{}': {e}", cfg.dir.display());
        std::process::exit(1);
    }
    let mut cfg = cfg;
    cfg.dir = std::path::PathBuf::from(".");
    // Room for maxclients sockets plus the server's own descriptors, as Redis sizes it.
    let (maxclients, warnings) = flurrydb::limits::adjust_open_files_limit(cfg.maxclients);
    for w in warnings {
        flurrydb::warning!("{w}");
    }
    cfg.maxclients = maxclients;
    // Before any other thread starts: one malloc arena when maxmemory is set (RSS near the limit).
    flurrydb::memory::one_arena_under_maxmemory(cfg.maxmemory);
    if cfg.maxmemory > 0 {
        // Before the keyspace's first block (see `db::blockheap`).
        flurrydb::db::blockheap::use_global_allocator();
    }
    // One runtime per worker thread (see `workers`); the first also runs the accept loops and this
    // thread's startup and shutdown below.
    let workers = if cfg.worker_threads > 0 { cfg.worker_threads } else { flurrydb::workers::default_count() };
    let runtimes = flurrydb::workers::start(workers);
    let rt = &runtimes[0];
    // A file-size limit (RLIMIT_FSIZE) must make AOF writes fail with EFBIG (then -MISCONF), not kill
    // the process: installing a handler replaces SIGXFSZ's default action for good.
    let _xfsz =
        rt.block_on(async { tokio::signal::unix::signal(tokio::signal::unix::SignalKind::from_raw(libc::SIGXFSZ)) });
    notice!("flurrydb {} starting, pid={}", env!("CARGO_PKG_VERSION"), std::process::id());
    server::warn_inert_settings(&cfg);
    server::write_pidfile(&cfg);
    let shared = Shared::new(cfg.clone());
    // The balancer judges its trials by the commands run (see `workers::Balancer`).
    let counted = shared.clone();
    flurrydb::workers::count_with(Box::new(move || counted.monitor.commands.total_calls()));
    // Clients that connect while the AOF or the RDB file loads get -LOADING, from the first one
    // the listener accepts (it is open before the load starts).
    if server::loads_at_start(&cfg) {
        shared.ks.set_loading(true);
        flurrydb::rdb::loading::start(0);
    }
    server::spawn_expiry_thread(shared.clone());
    flurrydb::memory::spawn_sampler(shared.clone());
    rt.block_on(async {
        let listeners = match server::bind(&cfg) {
            Ok(l) => l,
            Err(e) => {
                flurrydb::warning!("{e}");
                std::process::exit(1);
            }
        };
        server::start_accepting(&shared, listeners);
        // Loading runs right here on the main thread (the runtime's workers serve -LOADING meanwhile),
        // not on a blocking-pool thread: the main thread allocates from glibc's main arena, which
        // grows with brk in large steps, while another thread's arena grows its heap with an
        // mprotect call every few pages (a tenth of the load time of a 1M-key AOF).
        if let Err(e) = server::load_and_open_aof(&shared) {
            flurrydb::warning!("{e}");
            std::process::exit(1);
        }
        notice!("Ready to accept connections tcp on port {}", cfg.port);
        flurrydb::repl::start_from_config(&shared);
        server::wait_for_shutdown(&shared).await;
        // Stop accepting; connections finish the batch they are executing and close.
        server::drain_connections(&shared, SHUTDOWN_DRAIN).await;
        server::shutdown(&shared);
    });
    std::process::exit(0);
}
