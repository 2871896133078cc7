//! Private web servers for the web inputs: nginx and Apache instances on free loopback
//! ports, each with its own config in a temp dir, stopped by PID (SIGTERM, then SIGKILL).
//!
//! The binaries come from `RTC_NGINX_BIN` / `RTC_APACHE_BIN` (and `RTC_APACHE_MODULES`) or
//! Debian's paths, which `scripts/setup-web-peers` installs. A missing binary or a server that
//! does not start fails the test with the server's error log.

use super::certs::Certs;
use super::ports::free_port;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn binary(env: &str, default: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(env)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default));
    assert!(
        path.exists(),
        "{what} not found at {} : run scripts/setup-web-peers (installs Debian's nginx-light and \
         apache2), or set {env} to the binary",
        path.display()
    );
    path
}

/// A web server process, stopped by its PID when dropped.
pub struct Server {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
    pub tls_port: Option<u16>,
    name: &'static str,
}

impl Server {
    /// Waits until every port accepts connections, or fails with the server's error log.
    fn wait_ready(mut self) -> Server {
        let deadline = Instant::now() + Duration::from_secs(15);
        let ports: Vec<u16> = std::iter::once(self.port).chain(self.tls_port).collect();
        for port in ports {
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!(
                        "{} exited at start ({status}):\n{}",
                        self.name,
                        self.error_log()
                    );
                }
                assert!(
                    Instant::now() < deadline,
                    "{} does not listen on {port} after 15 s:\n{}",
                    self.name,
                    self.error_log()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self
    }

    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private nginx: stub_status at /nginx_status, a few fixed answers, and with `certs` an
/// HTTPS server too.
pub fn nginx(certs: Option<&Certs>) -> Server {
    let bin = binary("RTC_NGINX_BIN", "/usr/sbin/nginx", "nginx");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let port = free_port();
    let tls_port = certs.map(|_| free_port());
    let tls_server = match (certs, tls_port) {
        (Some(c), Some(p)) => format!(
            "server {{ listen 127.0.0.1:{p} ssl; ssl_certificate {}; ssl_certificate_key {};\n\
             location / {{ return 200 \"secure hello\\n\"; }} }}\n",
            c.cert.display(),
            c.key.display()
        ),
        _ => String::new(),
    };
    let conf = format!(
        "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log off;\n  default_type text/plain;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;\n\
           fastcgi_temp_path {d}/fastcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{\n    listen 127.0.0.1:{port};\n\
             location = /nginx_status {{ stub_status; }}\n\
             location = /hello {{ return 200 \"hello from nginx, healthy\\n\"; }}\n\
             location = /teapot {{ return 418 \"short and stout\"; }}\n\
             location = /moved {{ return 301 /hello; }}\n\
             location = /not-a-status-page {{ return 200 \"<html><body>It works!</body></html>\\n\"; }}\n\
           }}\n  {tls_server}}}\n"
    );
    std::fs::write(dir.path().join("nginx.conf"), conf).unwrap();
    let child = Command::new(&bin)
        .arg("-p")
        .arg(dir.path())
        .arg("-e")
        .arg(dir.path().join("error.log"))
        .arg("-c")
        .arg(dir.path().join("nginx.conf"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    Server {
        child,
        dir,
        port,
        tls_port,
        name: "nginx",
    }
    .wait_ready()
}

/// Apache's worker threads in the test config: one process of this many threads.
pub const APACHE_THREADS: u32 = 5;

/// A private Apache (event MPM, one process of [`APACHE_THREADS`] threads) with mod_status.
pub fn apache() -> Server {
    let bin = binary("RTC_APACHE_BIN", "/usr/sbin/apache2", "apache2");
    let modules = std::env::var_os("RTC_APACHE_MODULES")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/apache2/modules"));
    for m in ["mod_mpm_event.so", "mod_authz_core.so", "mod_status.so"] {
        assert!(
            modules.join(m).exists(),
            "{} has no {m}: run scripts/setup-web-peers, or set RTC_APACHE_MODULES",
            modules.display()
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let m = modules.display();
    let port = free_port();
    std::fs::create_dir(dir.path().join("htdocs")).unwrap();
    // As root, Apache's children must run as someone else.
    let root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let user = if root {
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let conf = format!(
        "ServerRoot \"{d}\"\nDefaultRuntimeDir \"{d}\"\nPidFile \"{d}/httpd.pid\"\n\
         Mutex file:{d} default\nErrorLog \"{d}/error.log\"\nLogLevel warn\n\
         ServerName localhost\nListen 127.0.0.1:{port}\nDocumentRoot \"{d}/htdocs\"\n{user}\
         LoadModule mpm_event_module {m}/mod_mpm_event.so\n\
         LoadModule authz_core_module {m}/mod_authz_core.so\n\
         LoadModule status_module {m}/mod_status.so\n\
         ServerLimit 1\nStartServers 1\nThreadLimit {t}\nThreadsPerChild {t}\n\
         MaxRequestWorkers {t}\nMinSpareThreads 1\nMaxSpareThreads {t}\n\
         ExtendedStatus On\n\
         <Location \"/server-status\">\n  SetHandler server-status\n</Location>\n",
        t = APACHE_THREADS
    );
    let conf_path = dir.path().join("httpd.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(&bin)
        .arg("-f")
        .arg(&conf_path)
        .args(["-D", "FOREGROUND"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let server = Server {
        child,
        dir,
        port,
        tls_port: None,
        name: "apache2",
    }
    .wait_ready();
    // Listening comes before the worker threads are up: wait for all of them.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, page) = http_get(port, "/server-status?auto");
        let n = |key: &str| {
            page.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        if let (Some(busy), Some(idle)) = (n("BusyWorkers:"), n("IdleWorkers:")) {
            if busy + idle == APACHE_THREADS {
                return server;
            }
        }
        assert!(
            Instant::now() < deadline,
            "apache2's workers are not all up after 15 s:\n{page}\n{}",
            server.error_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One plain HTTP/1.0 GET from the test itself: status and body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, body.to_string())
}
