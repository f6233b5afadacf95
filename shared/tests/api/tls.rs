//! TLS to Postgres, against a real server with TLS on (a throwaway cluster with a
//! certificate from a test CA): used when asked for, verified whenever used.

use devkit::localpg::{free_port, workspace_root, Cluster};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use shared::platform::config::ConfigError;
use shared::platform::database::{self as db, Connect};
use std::path::{Path, PathBuf};

struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("CA certificate");
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for 127.0.0.1 and localhost, and its key.
fn server_certificate(ca: &Ca) -> (String, String) {
    let params = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("params");
    let key = KeyPair::generate().expect("key");
    let cert = params
        .signed_by(&key, &ca.issuer)
        .expect("server certificate");
    (cert.pem(), key.serialize_pem())
}

/// Whether a pooled session to `url` runs over TLS, as Postgres itself reports it.
async fn tls_in_use(url: &str, ca_file: Option<&Path>) -> Result<bool, String> {
    let connect = Connect::new(url, ca_file).map_err(|e| e.to_string())?;
    let pool = db::pool(&connect, 1).map_err(|e| e.to_string())?;
    let client = pool.get().await.map_err(|e| format!("{e:?}"))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

#[tokio::test]
async fn database_tls_is_used_when_asked_for_and_always_verified() {
    let dir = workspace_root()
        .join("target/tls-test")
        .join(uuid::Uuid::new_v4().simple().to_string());
    let cluster =
        Cluster::start(&dir, free_port().expect("a free port")).expect("a cluster of our own");
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let require = format!("{url}?sslmode=require");

    // TLS off on the server: `require` refuses to fall back to plain TCP.
    assert!(tls_in_use(&require, None).await.is_err());
    assert_eq!(tls_in_use(&url, None).await, Ok(false));

    let ours = ca("Billwire test CA");
    let theirs = ca("Somebody else's CA");
    let (cert, key) = server_certificate(&ours);
    cluster.enable_tls(&cert, &key).expect("TLS on");
    let files = dir.join("client");
    std::fs::create_dir_all(&files).expect("dir");
    let write = |name: &str, text: &str| -> PathBuf {
        let path = files.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let our_ca = write("ours.pem", &ours.pem);
    let their_ca = write("theirs.pem", &theirs.pem);

    // Verified against the CA file: TLS, as pg_stat_ssl confirms.
    assert_eq!(tls_in_use(&require, Some(&our_ca)).await, Ok(true));
    assert_eq!(tls_in_use(&url, Some(&our_ca)).await, Ok(true));
    // A certificate from a CA we were not told about is refused, with `require` and with
    // the default `prefer` alike (no silent fall back to plain TCP or to trusting it).
    for (url, ca) in [
        (&require, Some(their_ca.as_path())),
        (&url, Some(their_ca.as_path())),
        // Without a CA file, `require` trusts the system's roots, which do not know ours.
        (&require, None),
    ] {
        let refused = tls_in_use(url, ca).await;
        assert!(refused.is_err(), "{url} with {ca:?}: {refused:?}");
    }
    // Reached by name: the certificate names `localhost` too.
    let by_name = require.replace("127.0.0.1", "localhost");
    assert_eq!(tls_in_use(&by_name, Some(&our_ca)).await, Ok(true));
    // Without a CA file and without `require`, sessions stay plain, as in local mode.
    assert_eq!(tls_in_use(&url, None).await, Ok(false));
}

#[test]
fn a_bad_ca_file_is_a_clear_configuration_error() {
    let dir = workspace_root().join("target/tls-test");
    std::fs::create_dir_all(&dir).expect("dir");
    let empty = dir.join(format!("{}.pem", uuid::Uuid::new_v4().simple()));
    std::fs::write(&empty, "not a certificate\n").expect("write");
    let url = "postgres://postgres@127.0.0.1/postgres?sslmode=require";
    for path in [empty.as_path(), Path::new("/nonexistent/ca.pem")] {
        match Connect::new(url, Some(path)) {
            Err(ConfigError::Invalid { name, reason }) => {
                assert_eq!(name, "DATABASE_CA_FILE");
                assert!(reason.contains(&path.display().to_string()), "{reason}");
            }
            Err(other) => panic!("{path:?}: {other}"),
            Ok(_) => panic!("{path:?} accepted"),
        }
    }
    let _ = std::fs::remove_file(&empty);
    assert!(matches!(
        Connect::new("postgres://x@127.0.0.1/db?sslmode=verify-full", None),
        Err(ConfigError::Invalid {
            name: "DATABASE_URL",
            ..
        })
    ));
}
