//! Certificates made at test time with the openssl CLI (Debian package `openssl`).

use super::clock::now_secs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `openssl args…` in `dir`; fails the test with openssl's stderr.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package `openssl`) is needed to make test certificates");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed server certificate for 127.0.0.1 made with `openssl req -x509`, plus
/// `extra` options, as `<name>.pem` and `<name>.key` in `dir`.
pub fn self_signed_cert(dir: &Path, name: &str, extra: &[&str]) {
    let (pem, key) = (format!("{name}.pem"), format!("{name}.key"));
    let mut args = vec![
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        &key,
        "-out",
        &pem,
        "-days",
        "2",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
    ];
    args.extend_from_slice(extra);
    openssl(dir, &args);
}

/// Makes a CA and a server certificate for 127.0.0.1/localhost (and a client certificate)
/// with the openssl CLI, in `dir`. Returns the CA's path.
pub fn make_certs(dir: &Path, ca_name: &str) -> PathBuf {
    let run = |args: &[&str]| openssl(dir, args);
    let p256_key = |out: &str| {
        run(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            out,
        ])
    };
    let ca_key = format!("{ca_name}.key");
    let ca = format!("{ca_name}.pem");
    p256_key(&ca_key);
    run(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &ca_key,
        "-days",
        "2",
        "-subj",
        &format!("/CN=rtcollector test {ca_name}"),
        "-out",
        &ca,
    ]);
    for who in ["server", "client"] {
        let key = format!("{ca_name}-{who}.key");
        let csr = format!("{ca_name}-{who}.csr");
        let crt = format!("{ca_name}-{who}.pem");
        let ext = format!("{ca_name}-{who}.ext");
        std::fs::write(
            dir.join(&ext),
            if who == "server" {
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            } else {
                "extendedKeyUsage=clientAuth\n"
            },
        )
        .unwrap();
        p256_key(&key);
        run(&[
            "req",
            "-new",
            "-key",
            &key,
            "-subj",
            &format!("/CN={who}"),
            "-out",
            &csr,
        ]);
        run(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext,
            "-out",
            &crt,
        ]);
    }
    dir.join(ca)
}

/// Certificates made by `openssl` for one test: a CA, and a server certificate for
/// `localhost` and 127.0.0.1 valid for 30 days.
pub struct Certs {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When the server certificate was made (its notAfter is 30 days later).
    pub made_at: f64,
}

pub fn make_server_certs(dir: &Path) -> Certs {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "60",
        "-subj",
        "/CN=rtcollector test CA",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n\
         subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    let made_at = now_secs();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "ext.cnf",
            "-out",
            "server.pem",
        ],
    );
    Certs {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        made_at,
    }
}
