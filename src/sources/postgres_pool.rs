//! One pool of connections per PostgreSQL server for a whole run.
//!
//! Every source naming the same server (host, port, database, user), in whichever rule file,
//! draws from one [`ServerPool`]: `max_connections` caps the connections open to that server
//! across the run (the smallest any of those sources asks for), idle ones are closed after
//! `idle_timeout`, and all are closed when the last source holding the pool is dropped.
//!
//! A connection holds a [`Slot`] for as long as it is open: the slot goes back only when the
//! connection's task has ended (its socket closed), so a connection being closed, or one whose
//! query is being cancelled, still counts against the cap. Idle connections keep their slot;
//! one with other session settings (another source's timeouts or TLS settings) is closed to make
//! room when the cap is reached.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_postgres::Client;

/// The PostgreSQL servers of one run, each with its pool. Part of `RunResources`.
#[derive(Default)]
pub struct PostgresServers {
    pools: Mutex<HashMap<ServerKey, Weak<ServerPool>>>,
}

impl fmt::Debug for PostgresServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pools = self.pools.lock().expect("pool registry lock");
        f.debug_struct("PostgresServers")
            .field("servers", &pools.len())
            .finish()
    }
}

/// What makes two sources the same server: their connections are interchangeable but for
/// session settings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServerKey {
    pub host: String,
    pub port: u16,
    pub database: String,
    pub user: String,
}

impl PostgresServers {
    /// The pool of `key`'s server, created on first use, its cap lowered to `max_connections`
    /// and its idle timeout to `idle_timeout` if those are smaller than what earlier sources
    /// asked for. Called while rule files are parsed, before any connection is made.
    pub fn pool(
        &self,
        key: ServerKey,
        max_connections: usize,
        idle_timeout: Duration,
    ) -> Arc<ServerPool> {
        let mut pools = self.pools.lock().expect("pool registry lock");
        pools.retain(|_, pool| pool.strong_count() > 0);
        if let Some(pool) = pools.get(&key).and_then(Weak::upgrade) {
            pool.lower_limits(max_connections, idle_timeout);
            return pool;
        }
        let pool = Arc::new(ServerPool::new(max_connections, idle_timeout));
        pools.insert(key, Arc::downgrade(&pool));
        pool
    }
}

/// The connections to one server: at most `cap` open at once.
pub struct ServerPool {
    slots: Arc<Semaphore>,
    limits: Mutex<Limits>,
    idle: Mutex<Idle>,
    /// Woken when a connection goes back to the pool, for those waiting for one.
    returned: Notify,
    /// Read on the first connection any source makes to the server.
    facts: OnceLock<ServerFacts>,
}

/// What lakecheck reads of a server once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFacts {
    /// `server_version_num` (e.g. 150004).
    pub version_num: Option<u32>,
    /// `max_parallel_workers` (1 where the server has no such setting).
    pub max_parallel_workers: usize,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    cap: usize,
    idle_timeout: Duration,
}

#[derive(Default)]
struct Idle {
    connections: Vec<IdleConnection>,
    /// Whether a task is closing connections past the idle timeout (it runs while any are idle).
    reaping: bool,
}

struct IdleConnection {
    /// The session settings the connection was prepared with.
    profile: String,
    client: Client,
    since: Instant,
}

/// The right to keep one connection open; given back when dropped.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] OwnedSemaphorePermit);

/// A connection to use: one already open with the settings asked for, or a slot to open one.
pub enum Lease {
    Open(Client),
    New(Slot),
}

impl fmt::Debug for ServerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerPool")
            .field("limits", &*self.limits.lock().expect("pool limits lock"))
            .finish()
    }
}

impl ServerPool {
    fn new(cap: usize, idle_timeout: Duration) -> Self {
        let cap = cap.max(1);
        Self {
            slots: Arc::new(Semaphore::new(cap)),
            limits: Mutex::new(Limits { cap, idle_timeout }),
            idle: Mutex::new(Idle::default()),
            returned: Notify::new(),
            facts: OnceLock::new(),
        }
    }

    /// What was read of the server, once a connection was made.
    pub fn facts(&self) -> Option<ServerFacts> {
        self.facts.get().copied()
    }

    /// Keeps what the first connection read of the server.
    pub fn learn(&self, facts: ServerFacts) {
        let _ = self.facts.set(facts);
    }

    fn lower_limits(&self, max_connections: usize, idle_timeout: Duration) {
        let mut limits = self.limits.lock().expect("pool limits lock");
        let wanted = max_connections.max(1);
        if wanted < limits.cap {
            // Sources are parsed before anything connects, so every slot is free to forget.
            let forgotten = self.slots.forget_permits(limits.cap - wanted);
            limits.cap -= forgotten;
        }
        limits.idle_timeout = limits.idle_timeout.min(idle_timeout);
    }

    /// The most connections open to the server at once.
    pub fn cap(&self) -> usize {
        self.limits.lock().expect("pool limits lock").cap
    }

    fn idle_timeout(&self) -> Duration {
        self.limits.lock().expect("pool limits lock").idle_timeout
    }

    /// An open connection prepared with `profile`, or a slot to open one; waits while the
    /// server's connections are all in use.
    pub async fn lease(self: &Arc<Self>, profile: &str) -> Lease {
        self.acquire(Some(profile)).await
    }

    /// A slot for a connection of its own, never an idle one (the heartbeat write's).
    pub async fn fresh_slot(self: &Arc<Self>) -> Slot {
        match self.acquire(None).await {
            Lease::New(slot) => slot,
            Lease::Open(_) => unreachable!("acquire(None) never reuses a connection"),
        }
    }

    async fn acquire(self: &Arc<Self>, reuse: Option<&str>) -> Lease {
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            returned.as_mut().enable();
            let evicted = {
                let mut idle = self.idle.lock().expect("idle connections lock");
                // A connection the server closed has freed its slot already.
                idle.connections.retain(|c| !c.client.is_closed());
                if let Some(profile) = reuse {
                    if let Some(at) = idle.connections.iter().position(|c| c.profile == profile) {
                        return Lease::Open(idle.connections.swap_remove(at).client);
                    }
                }
                if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                    return Lease::New(Slot(permit));
                }
                // All slots taken: close the longest idle connection (of other settings, or any
                // for a fresh one) to make room; its slot frees once it has closed.
                let oldest = idle
                    .connections
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, c)| c.since)
                    .map(|(at, _)| at);
                oldest.map(|at| idle.connections.swap_remove(at))
            };
            drop(evicted);
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => {
                    return Lease::New(Slot(permit.expect("the pool's semaphore is never closed")));
                }
                _ = &mut returned => continue,
            }
        }
    }

    /// Puts a connection back for the next query with the same settings. A closed connection is
    /// dropped instead.
    pub fn give_back(self: &Arc<Self>, profile: &str, client: Client) {
        if client.is_closed() {
            return;
        }
        let start_reaper = {
            let mut idle = self.idle.lock().expect("idle connections lock");
            idle.connections.push(IdleConnection {
                profile: profile.to_string(),
                client,
                since: Instant::now(),
            });
            !std::mem::replace(&mut idle.reaping, true)
        };
        if start_reaper {
            tokio::spawn(reap(Arc::downgrade(self)));
        }
        self.returned.notify_waiters();
    }
}

/// Closes connections idle past the pool's idle timeout, while there are idle connections
/// and the pool lives.
async fn reap(pool: Weak<ServerPool>) {
    loop {
        let wait = {
            let Some(pool) = pool.upgrade() else { return };
            let timeout = pool.idle_timeout();
            let now = Instant::now();
            let mut idle = pool.idle.lock().expect("idle connections lock");
            let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut idle.connections)
                .into_iter()
                .partition(|c| now.duration_since(c.since) >= timeout);
            idle.connections = kept;
            drop(expired);
            match idle.connections.iter().map(|c| c.since).min() {
                None => {
                    idle.reaping = false;
                    return;
                }
                Some(oldest) => (oldest + timeout).saturating_duration_since(now),
            }
        };
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(database: &str) -> ServerKey {
        ServerKey {
            host: "db".into(),
            port: 5432,
            database: database.into(),
            user: "u".into(),
        }
    }

    #[test]
    fn sources_of_one_server_share_a_pool_capped_at_the_smallest_limit() {
        let servers = PostgresServers::default();
        let first = servers.pool(key("app"), 8, Duration::from_secs(5));
        let second = servers.pool(key("app"), 3, Duration::from_secs(9));
        let third = servers.pool(key("app"), 6, Duration::from_secs(2));
        let other = servers.pool(key("other"), 5, Duration::from_secs(5));
        assert!(Arc::ptr_eq(&first, &second) && Arc::ptr_eq(&first, &third));
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(first.cap(), 3);
        assert_eq!(first.slots.available_permits(), 3);
        assert_eq!(first.idle_timeout(), Duration::from_secs(2));
        assert_eq!(other.cap(), 5);
    }

    #[test]
    fn a_pool_no_source_holds_is_made_anew() {
        let servers = PostgresServers::default();
        drop(servers.pool(key("app"), 2, Duration::from_secs(5)));
        assert_eq!(servers.pool(key("app"), 7, Duration::from_secs(5)).cap(), 7);
    }

    #[tokio::test]
    async fn slots_beyond_the_cap_wait_for_one_to_free() {
        let servers = PostgresServers::default();
        let pool = servers.pool(key("app"), 2, Duration::from_secs(5));
        let Lease::New(first) = pool.lease("p").await else {
            panic!("nothing is idle")
        };
        let _second = pool.fresh_slot().await;
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move { pool.fresh_slot().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.expect("a slot after one was freed");
    }
}
