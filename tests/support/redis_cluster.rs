//! A private Redis Cluster of Redis Stack servers (RedisTimeSeries loaded on every node),
//! made with `redis-cli --cluster create` on reserved loopback ports (client and bus), with
//! a low `cluster-node-timeout` so a failover takes seconds. Killed by PID when dropped. A
//! node or a cluster that does not come up fails the test with every node's log.

use super::ports::{reserve_port, ReservedPort};
use super::redis_server::{stack_dir, Server};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `cluster-node-timeout`: a master that does not answer for this long is failed over.
pub const NODE_TIMEOUT_MS: u64 = 1000;

pub struct RedisCluster {
    pub nodes: Vec<Server>,
    _bus: Vec<ReservedPort>,
}

pub fn redis_cli() -> std::path::PathBuf {
    stack_dir().join("bin/redis-cli")
}

impl RedisCluster {
    /// `masters` masters with `replicas` replicas each; AOF on, so a node killed and
    /// started again keeps what it had.
    pub fn start(masters: usize, replicas: usize) -> RedisCluster {
        RedisCluster::start_with(masters, replicas, true)
    }

    /// As [`RedisCluster::start`], with AOF only when `aof` (a benchmark compares with a
    /// single server that has none).
    pub fn start_with(masters: usize, replicas: usize, aof: bool) -> RedisCluster {
        RedisCluster::start_with_timeout(masters, replicas, aof, NODE_TIMEOUT_MS)
    }

    /// As [`RedisCluster::start_with`], with another `cluster-node-timeout` (Redis's
    /// default is 15 s: a dead master is failed over that much later).
    pub fn start_with_timeout(
        masters: usize,
        replicas: usize,
        aof: bool,
        node_timeout_ms: u64,
    ) -> RedisCluster {
        let count = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(count);
        let mut bus = Vec::with_capacity(count);
        for _ in 0..count {
            let b = reserve_port();
            let bus_port = b.port.to_string();
            let timeout = node_timeout_ms.to_string();
            nodes.push(Server::stack(&[
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-port",
                &bus_port,
                "--cluster-node-timeout",
                &timeout,
                "--appendonly",
                if aof { "yes" } else { "no" },
                // A replica may always take over (a busy test machine must not make its
                // data look too old to be promoted).
                "--cluster-replica-validity-factor",
                "0",
            ]));
            bus.push(b);
        }
        let c = RedisCluster { nodes, _bus: bus };
        let mut args = vec!["--cluster".to_string(), "create".to_string()];
        args.extend(c.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend([
            "--cluster-replicas".to_string(),
            replicas.to_string(),
            "--cluster-yes".to_string(),
        ]);
        c.cli(&args);
        c.wait_ok(&[], Duration::from_secs(30));
        c
    }

    /// Runs redis-cli with `args`; fails the test with its output and the logs.
    pub fn cli(&self, args: &[String]) -> String {
        let out = Command::new(redis_cli())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run redis-cli");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && !text.contains("[ERR]"),
            "redis-cli {} failed:\n{text}\n{}",
            args.join(" "),
            self.logs()
        );
        text
    }

    /// Starts `redis-cli --cluster reshard` moving `slots` slots from node `from` to node
    /// `to` (indices into `nodes`); the caller waits for it.
    pub fn reshard(&self, from: usize, to: usize, slots: usize) -> Child {
        Command::new(redis_cli())
            .args([
                "--cluster",
                "reshard",
                &format!("127.0.0.1:{}", self.nodes[from].port),
                "--cluster-from",
                &self.node_id(from),
                "--cluster-to",
                &self.node_id(to),
                "--cluster-slots",
                &slots.to_string(),
                "--cluster-yes",
                "--cluster-pipeline",
                "5",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run redis-cli --cluster reshard")
    }

    pub fn node_id(&self, i: usize) -> String {
        let mut c = self.nodes[i].client();
        redis::cmd("CLUSTER")
            .arg("MYID")
            .query(&mut c)
            .expect("CLUSTER MYID")
    }

    /// `host:port,…` of every node, for `nodes:`.
    pub fn seeds_yaml(&self) -> String {
        let list: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("\"127.0.0.1:{}\"", n.port))
            .collect();
        format!("[{}]", list.join(", "))
    }

    /// The node (index) that owns `slot` now, asked of a live node.
    pub fn owner_of_slot(&self, slot: u16, dead: &[usize]) -> usize {
        let asker = (0..self.nodes.len())
            .find(|i| !dead.contains(i))
            .expect("a live node");
        let mut c = self.nodes[asker].client();
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query(&mut c)
            .expect("CLUSTER SLOTS");
        for r in ranges {
            let redis::Value::Array(f) = r else { continue };
            let (redis::Value::Int(a), redis::Value::Int(b), redis::Value::Array(m)) =
                (&f[0], &f[1], &f[2])
            else {
                continue;
            };
            if (*a..=*b).contains(&i64::from(slot)) {
                let redis::Value::Int(port) = m[1] else {
                    panic!("port in {m:?}")
                };
                return self
                    .nodes
                    .iter()
                    .position(|n| i64::from(n.port) == port)
                    .expect("a node of ours");
            }
        }
        panic!("no node owns slot {slot}\n{}", self.logs())
    }

    /// The slot of `key` as the first node that answers computes it.
    pub fn keyslot(&self, key: &str) -> u16 {
        for n in &self.nodes {
            let Ok(mut c) = redis::Client::open(n.url()).and_then(|c| c.get_connection()) else {
                continue;
            };
            if let Ok(slot) = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut c) {
                return slot;
            }
        }
        panic!("no node answers CLUSTER KEYSLOT\n{}", self.logs())
    }

    /// A connection to the master that owns `key`.
    pub fn client_for(&self, key: &str, dead: &[usize]) -> redis::Connection {
        let owner = self.owner_of_slot(self.keyslot(key), dead);
        self.nodes[owner].client()
    }

    /// SIGKILL of node `i` (its AOF stays).
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Node `i` again, on its ports, with its AOF and nodes.conf.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].restart();
    }

    /// Waits until every live node says `cluster_state:ok` and every live replica has
    /// synced with its master.
    pub fn wait_ok(&self, dead: &[usize], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.is_ok(dead) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster is not ok within {timeout:?}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn is_ok(&self, dead: &[usize]) -> bool {
        for (i, n) in self.nodes.iter().enumerate() {
            if dead.contains(&i) {
                continue;
            }
            let Ok(mut c) = redis::Client::open(n.url()).and_then(|c| c.get_connection()) else {
                return false;
            };
            let info: String = match redis::cmd("CLUSTER").arg("INFO").query(&mut c) {
                Ok(i) => i,
                Err(_) => return false,
            };
            if !info.contains("cluster_state:ok") {
                return false;
            }
            // A replica counts once it has synced: before that a failover would lose data
            // the test wrote.
            let repl: String = match redis::cmd("INFO").arg("replication").query(&mut c) {
                Ok(i) => i,
                Err(_) => return false,
            };
            if repl.contains("role:slave") && !repl.contains("master_link_status:up") {
                return false;
            }
        }
        true
    }

    /// Every node's log, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("--- node 127.0.0.1:{} ---\n{}", n.port, tail(&n.log(), 40)))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
