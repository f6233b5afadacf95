//! The deployed stack, rehearsed on this machine (docs/architecture.md, "The deployed stack, rehearsed").
//!
//! Nothing here is a copy of template.yaml: infra/rehearsal/stack.py expands it with SAM's
//! own translator and resolves it as CloudFormation would, in an AWS emulator that enforces
//! IAM. Then each function starts as Lambda starts it and the connector as Fargate starts
//! its task, and they reach AWS and Postgres by the names and routes the deployed stack
//! uses:
//!
//! - [`Aws`]: moto (infra/rehearsal/moto_server.py) with IAM enforced; [`Plan`]: what the
//!   template creates there (secrets, policies, roles) and what each function and the
//!   connector's task get (environment, credentials of their role, resolved secrets).
//! - [`Front`]: nginx serving the AWS host names the code calls
//!   (`secretsmanager.<region>.amazonaws.com`, the WebSocket API's `execute-api` host, the
//!   S3 host of CloudFormation's response URLs) over TLS with a certificate from a CA of
//!   the rehearsal's ([`Tls`]), which the containers trust. The containers resolve those
//!   names to it (`--add-host`), so no endpoint is overridden anywhere.
//! - [`Pooler`]: PgBouncer in session mode between the functions and Postgres: like RDS
//!   Proxy, it refuses a session whose startup packet carries `options`.
//! - [`Lambdas`]: one container a function, under the Lambda Runtime Interface Emulator
//!   that the SAM CLI ships, with exactly the environment the template gives it.
//! - [`fargate`]: the connector's image, assembled from infra/connector.Dockerfile's runtime
//!   stage, run as ECS Fargate runs its task definition.

pub mod fargate;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The region the rehearsal's stack lives in (stack.py's REGION).
pub const REGION: &str = "us-east-1";
/// The WebSocket API's id in the rehearsal (the `execute-api` host name).
pub const API_ID: &str = "rh0000ws01";
/// The bucket CloudFormation's pre-signed response URLs point at, in [`REGION`].
pub const RESPONSE_HOST: &str = "cloudformation-custom-resource-response-useast1.s3.amazonaws.com";

pub fn workspace() -> PathBuf {
    devkit::localpg::workspace_root()
}

/// Everything the rehearsal writes: `target/rehearsal/` (never the checkout itself).
pub fn dir() -> PathBuf {
    workspace().join("target").join("rehearsal")
}

pub fn secrets_manager_host() -> String {
    format!("secretsmanager.{REGION}.amazonaws.com")
}

pub fn execute_api_host() -> String {
    format!("{API_ID}.execute-api.{REGION}.amazonaws.com")
}

pub(crate) fn run(cmd: &mut Command, what: &str) -> Result<String, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn find(program: &str, also: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(also.iter().map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Why the rehearsal cannot run here, or `None`: a Docker daemon, an x86_64 machine (the
/// images are assembled from this machine's glibc), PgBouncer and nginx (Debian: `apt-get install pgbouncer nginx-light`).
pub fn unavailable() -> Option<String> {
    if let Some(why) = fargate::unavailable() {
        return Some(why);
    }
    for (program, package) in [("pgbouncer", "pgbouncer"), ("nginx", "nginx-light")] {
        if find(program, &["/usr/sbin"]).is_none() {
            return Some(format!(
                "{program} is missing; Debian/Ubuntu: apt-get install {package}"
            ));
        }
    }
    None
}

/// Whether a test that needs `unavailable`'s answer to be `None` may run. Where it cannot,
/// the test FAILS saying why, unless BILLWIRE_SKIP_SAM=1 says to skip the container tests
/// (as for SAM local): then it prints SKIPPED with the reason, and `cargo xtask test`
/// repeats it after the run. A machine that cannot run them never passes them silently.
pub fn can_run(test: &str, unavailable: Option<String>) -> bool {
    let Some(why) = unavailable else {
        return true;
    };
    if std::env::var("BILLWIRE_SKIP_SAM").is_ok_and(|v| v == "1") {
        eprintln!("SKIPPED: {test}: {why} (BILLWIRE_SKIP_SAM=1)");
        return false;
    }
    panic!(
        "{test} cannot run here: {why}.\nInstall Docker, PgBouncer and nginx \
         (apt-get install docker.io pgbouncer nginx-light) and start dockerd, or set \
         BILLWIRE_SKIP_SAM=1 to skip the container tests (they then say SKIPPED)."
    );
}

/// The Python tools: SAM's translator, moto and the Runtime Interface Emulator the SAM CLI
/// ships, in `target/tools/rehearsal-venv` from infra/rehearsal/requirements.txt
/// (reinstalled when that file changes).
pub fn venv() -> Result<PathBuf, String> {
    let root = workspace();
    let requirements = root.join("infra/rehearsal/requirements.txt");
    devkit::tools::python_venv(&root, "rehearsal-venv", &requirements)
}

/// The Lambda Runtime Interface Emulator bundled with the SAM CLI in [`venv`].
pub fn runtime_interface_emulator(python: &Path) -> Result<PathBuf, String> {
    let out = run(
        Command::new(python).args([
            "-c",
            "import os, samcli; print(os.path.join(os.path.dirname(samcli.__file__), 'local', 'rapid'))",
        ]),
        "finding the SAM CLI's emulator",
    )?;
    let path = PathBuf::from(out.trim()).join(format!("aws-lambda-rie-{}", std::env::consts::ARCH));
    path.is_file()
        .then_some(path.clone())
        .ok_or_else(|| format!("no emulator at {}", path.display()))
}

/// A CA of the rehearsal's and one certificate, signed by it, for every AWS host name the
/// rehearsal serves ([`Front`]). Kept in `target/rehearsal/tls/` across runs, so the
/// images that trust the CA are built once.
pub struct Tls {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl Tls {
    pub fn ensure() -> Result<Tls, String> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let dir = dir().join("tls");
        let hosts = vec![
            secrets_manager_host(),
            execute_api_host(),
            RESPONSE_HOST.to_string(),
        ];
        let tls = Tls {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("cert.pem"),
            key_pem: dir.join("key.pem"),
        };
        let names = dir.join("hosts");
        if tls.key_pem.is_file() && std::fs::read_to_string(&names).ok() == Some(hosts.join("\n")) {
            return Ok(tls);
        }
        let e = |e: rcgen::Error| format!("rcgen: {e}");
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(e)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name.push(
            DnType::CommonName,
            "Billwire rehearsal CA (target/rehearsal/tls)",
        );
        let ca_key = KeyPair::generate().map_err(e)?;
        let ca_cert = ca.self_signed(&ca_key).map_err(e)?;
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().map_err(e)?;
        let cert = CertificateParams::new(hosts.clone())
            .map_err(e)?
            .signed_by(&key, &issuer)
            .map_err(e)?;
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (path, text) in [
            (&tls.ca_pem, ca_cert.pem()),
            (&tls.cert_pem, cert.pem()),
            (&tls.key_pem, key.serialize_pem()),
            (&names, hosts.join("\n")),
        ] {
            std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(tls)
    }
}

/// Docker's bridge gateway: where the containers reach this machine.
pub fn host_gateway() -> Result<IpAddr, String> {
    samlocal::docker_host_gateway()
}

/// A port nothing listens on at `ip`.
pub fn free_port_on(ip: IpAddr) -> Result<u16, String> {
    std::net::TcpListener::bind((ip, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on {ip}: {e}"))
}

/// A directory of this run's own, outside the checkout's watched files: `target/rehearsal/runs/<id>`.
pub fn run_dir(id: &str) -> Result<PathBuf, String> {
    let d = dir().join("runs").join(id);
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    Ok(d)
}

/// moto's server with IAM enforced after the first three requests (stack.py's
/// administrator), on 127.0.0.1.
pub struct Aws {
    pub endpoint: String,
    pub proc: devkit::supervisor::Proc,
}

impl Aws {
    pub async fn start(python: &Path, log_dir: &Path) -> Result<Aws, String> {
        let port = free_port_on(IpAddr::from([127, 0, 0, 1]))?;
        let mut cmd = tokio::process::Command::new(python);
        cmd.arg(workspace().join("infra/rehearsal/moto_server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
        let mut proc = devkit::supervisor::Proc::spawn("moto", cmd, log_dir)?;
        proc.wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(60))
            .await?;
        Ok(Aws {
            endpoint: format!("http://127.0.0.1:{port}"),
            proc,
        })
    }

    /// Stands the template up in moto (stack.py): the plan for every function and the task.
    pub fn stand_up(
        &self,
        python: &Path,
        parameters: &Value,
        log_dir: &Path,
    ) -> Result<Plan, String> {
        let request = log_dir.join("stack-request.json");
        let body = json!({
            "template": workspace().join("template.yaml"),
            "parameters": parameters,
            "moto": self.endpoint,
            "stack_name": "billwire",
            "api_id": API_ID,
        });
        std::fs::write(&request, body.to_string())
            .map_err(|e| format!("{}: {e}", request.display()))?;
        let out = run(
            Command::new(python)
                .arg(workspace().join("infra/rehearsal/stack.py"))
                .arg(&request)
                .env("AWS_EC2_METADATA_DISABLED", "true"),
            "infra/rehearsal/stack.py (the template, stood up in moto)",
        )?;
        std::fs::write(log_dir.join("plan.json"), &out).map_err(|e| e.to_string())?;
        let plan: Value =
            serde_json::from_str(&out).map_err(|e| format!("stack.py printed no plan: {e}"))?;
        Ok(Plan(plan))
    }
}

/// What stack.py says the template creates (see its docstring).
pub struct Plan(pub Value);

impl Plan {
    pub fn functions(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0["functions"].as_object().into_iter().flatten()
    }

    pub fn function(&self, logical: &str) -> &Value {
        &self.0["functions"][logical]
    }

    pub fn migrations(&self) -> &Value {
        &self.0["migrations"]
    }

    pub fn connector(&self) -> &Value {
        &self.0["connector"]
    }
}

/// nginx on the bridge gateway's port 443, terminating TLS for the AWS host names the code
/// calls and passing each to the local stand-in behind it (`upstreams`: host name ->
/// `http://127.0.0.1:PORT` and an optional path prefix to strip, as an API Gateway stage).
pub struct Front {
    pub proc: devkit::supervisor::Proc,
}

impl Front {
    pub async fn start(
        tls: &Tls,
        listen: IpAddr,
        upstreams: &[(String, String, Option<String>)],
        dir: &Path,
    ) -> Result<Front, String> {
        let mut servers = String::new();
        for (host, upstream, strip) in upstreams {
            let location = match strip {
                Some(prefix) => format!(
                    "location /{prefix}/ {{ proxy_pass {upstream}/; include proxy.conf; }}\n    \
                     location / {{ return 403; }}"
                ),
                None => format!("location / {{ proxy_pass {upstream}; include proxy.conf; }}"),
            };
            servers.push_str(&format!(
                "  server {{\n    listen {listen}:443 ssl;\n    server_name {host};\n    \
                 ssl_certificate {cert};\n    ssl_certificate_key {key};\n    {location}\n  }}\n",
                cert = tls.cert_pem.display(),
                key = tls.key_pem.display(),
            ));
        }
        let conf = format!(
            "worker_processes 1;\npid {dir}/nginx.pid;\nerror_log {dir}/nginx-error.log info;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log {dir}/nginx-access.log;\n  client_body_temp_path {dir}/body;\n  \
             proxy_temp_path {dir}/proxy;\n  client_max_body_size 10m;\n  server_names_hash_bucket_size 128;\n  \
             map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}\n\
             {servers}}}\n",
            dir = dir.display()
        );
        let proxy = "proxy_http_version 1.1;\nproxy_set_header Host $host;\n\
                     proxy_set_header Upgrade $http_upgrade;\n\
                     proxy_set_header Connection $connection_upgrade;\n\
                     proxy_read_timeout 3600s;\nproxy_buffering off;\n";
        std::fs::write(dir.join("nginx.conf"), conf).map_err(|e| e.to_string())?;
        std::fs::write(dir.join("proxy.conf"), proxy).map_err(|e| e.to_string())?;
        let nginx = find("nginx", &["/usr/sbin"]).ok_or("nginx is missing")?;
        let mut cmd = tokio::process::Command::new(nginx);
        cmd.arg("-p")
            .arg(dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("nginx-error.log"))
            .args(["-g", "daemon off;"]);
        let mut proc = devkit::supervisor::Proc::spawn("nginx", cmd, dir)?;
        proc.wait_for_port(&format!("{listen}:443"), Duration::from_secs(30))
            .await
            .map_err(|e| {
                format!(
                    "{e}\n{}",
                    std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
                )
            })?;
        Ok(Front { proc })
    }
}

/// PgBouncer between the functions and Postgres, listening on the bridge gateway.
///
/// Session mode, because that is what RDS Proxy does with these sessions: the functions
/// prepare statements at the protocol level (tokio-postgres always does) and `SET` their
/// timeouts, and RDS Proxy pins such a session to one database connection for its life.
/// Debian's PgBouncer (1.18) has no protocol-level prepared statements, so its transaction
/// mode would be stricter than RDS Proxy and fail where RDS Proxy works. What both refuse
/// alike: startup parameters they do not know, `options` among them.
pub struct Pooler {
    pub port: u16,
    pub proc: devkit::supervisor::Proc,
}

impl Pooler {
    pub async fn start(listen: IpAddr, postgres_url: &str, dir: &Path) -> Result<Pooler, String> {
        let config: tokio_postgres_config::Config = postgres_url
            .parse()
            .map_err(|e| format!("{postgres_url}: {e}"))?;
        let host = match config.get_hosts().first() {
            Some(tokio_postgres_config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let listen_port = free_port_on(listen)?;
        let conf = format!(
            "[databases]\n* = host={host} port={port}\n\n[pgbouncer]\nlisten_addr = {listen}\n\
             listen_port = {listen_port}\nunix_socket_dir =\nauth_type = trust\n\
             auth_file = {dir}/pgbouncer-users.txt\npool_mode = session\nmax_client_conn = 500\n\
             default_pool_size = 50\nlogfile =\npidfile =\n",
            dir = dir.display()
        );
        let users = dir.join("pgbouncer-users.txt");
        std::fs::write(&users, "\"postgres\" \"\"\n").map_err(|e| e.to_string())?;
        let ini = dir.join("pgbouncer.ini");
        std::fs::write(&ini, conf).map_err(|e| e.to_string())?;
        // PgBouncer refuses to run as root; it reads its files as `nobody`.
        use std::os::unix::fs::PermissionsExt;
        for path in [dir.to_path_buf(), users, ini.clone()] {
            let mode = if path.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| e.to_string())?;
        }
        let pgbouncer = find("pgbouncer", &["/usr/sbin"]).ok_or("pgbouncer is missing")?;
        let mut cmd = tokio::process::Command::new(pgbouncer);
        if is_root() {
            cmd.args(["-u", "nobody"]);
        }
        cmd.arg(&ini);
        let mut proc = devkit::supervisor::Proc::spawn("pgbouncer", cmd, dir)?;
        proc.wait_for_port(&format!("{listen}:{listen_port}"), Duration::from_secs(30))
            .await?;
        Ok(Pooler {
            port: listen_port,
            proc,
        })
    }
}

fn is_root() -> bool {
    run(Command::new("id").arg("-u"), "id -u").is_ok_and(|u| u.trim() == "0")
}

/// The base image of the function containers: SAM local's stand-in for provided.al2023
/// (infra/sam/base-image.sh) with the rehearsal's CA added to the system bundle, where
/// the AWS SDK and reqwest look.
pub fn lambda_image(tls: &Tls) -> Result<String, String> {
    samlocal::ensure_base_image()?;
    let ca = std::fs::read(&tls.ca_pem).map_err(|e| e.to_string())?;
    let tag = format!(
        "billwire/rehearsal-lambda:{}",
        &uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, &ca)
            .simple()
            .to_string()[..12]
    );
    if run(
        Command::new("docker").args(["image", "inspect", &tag]),
        "docker image inspect",
    )
    .is_ok()
    {
        return Ok(tag);
    }
    let ctx =
        std::env::temp_dir().join(format!("billwire-rehearsal-lambda-{}", std::process::id()));
    std::fs::create_dir_all(&ctx).map_err(|e| e.to_string())?;
    std::fs::write(ctx.join("ca.pem"), &ca).map_err(|e| e.to_string())?;
    let dockerfile = format!(
        "FROM {base}\nCOPY ca.pem /tmp/rehearsal-ca.pem\n\
         RUN cat /tmp/rehearsal-ca.pem >> /etc/ssl/certs/ca-certificates.crt && rm /tmp/rehearsal-ca.pem\n",
        base = samlocal::BASE_IMAGE
    );
    std::fs::write(ctx.join("Dockerfile"), dockerfile).map_err(|e| e.to_string())?;
    let built = run(
        Command::new("docker")
            .args(["build", "-q", "-t", &tag])
            .arg(&ctx),
        "docker build (the function image)",
    );
    let _ = std::fs::remove_dir_all(&ctx);
    built.map(|_| tag)
}

/// One container a function, as Lambda runs it: the function's code read-only at
/// /var/task, its layers read-only at /opt, a read-only root with a writable /tmp, its
/// memory (see `start_one` for the debug build's allowance), a non-root user, and the environment the template gives it plus what Lambda
/// adds (region, function name and memory, the role's credentials); nothing else.
pub struct Lambdas {
    /// Binary -> `http://127.0.0.1:PORT` of its emulator.
    pub routes: HashMap<String, String>,
    containers: Vec<String>,
}

pub struct LambdaSetup<'a> {
    pub run_id: &'a str,
    pub image: &'a str,
    pub emulator: &'a Path,
    pub build_dir: &'a Path,
    pub add_hosts: &'a [(String, IpAddr)],
}

impl Lambdas {
    pub fn start(plan: &Plan, setup: &LambdaSetup) -> Result<Lambdas, String> {
        // What a killed rehearsal left running (labelled with its pid) goes first.
        fargate::remove_leftovers();
        let mut lambdas = Lambdas {
            routes: HashMap::new(),
            containers: Vec::new(),
        };
        let started: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = plan
                .functions()
                .map(|(logical, f)| s.spawn(move || Self::start_one(logical, f, setup)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("a start panicked".into())))
                .collect()
        });
        // Every container that started is recorded before any error is returned, so that
        // dropping `lambdas` removes them all.
        let mut first_error = None;
        for result in started {
            match result {
                Ok((binary, name, url)) => {
                    lambdas.containers.push(name);
                    lambdas.routes.insert(binary, url);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(lambdas),
        }
    }

    fn start_one(
        logical: &str,
        f: &Value,
        setup: &LambdaSetup,
    ) -> Result<(String, String, String), String> {
        let binary = f["binary"].as_str().ok_or("a function without a binary")?;
        let name = format!("billwire-rehearsal-{}-{binary}", setup.run_id);
        let code = setup.build_dir.join(binary);
        if !code.join("bootstrap").is_file() {
            return Err(format!("{}: no bootstrap (build first)", code.display()));
        }
        let memory = f["memory"].as_u64().unwrap_or(128);
        // The rehearsal runs debug builds, ten times the size of release ones (100 MB of
        // text and line tables against 10 MB), and the page cache of a mapped binary counts
        // against a container's memory. The limit is the template's MemorySize plus that
        // difference, so what the code itself allocates is held to what AWS gives it.
        let binary_mb = std::fs::metadata(code.join("bootstrap"))
            .map(|m| m.len() / (1024 * 1024))
            .unwrap_or(0);
        let mut cmd = Command::new("docker");
        cmd.args(["run", "-d", "--name", &name, "--label"])
            .arg(format!("{}={}", fargate::OWNER_LABEL, std::process::id()))
            .args(["--read-only", "--tmpfs", "/tmp:rw,size=512m,mode=1777"])
            .args([
                "--user",
                "993:990",
                "--memory",
                &format!("{}m", memory + binary_mb),
            ])
            .args(["-p", "127.0.0.1::8080"])
            .arg("-v")
            .arg(format!("{}:/var/task:ro", code.display()))
            .arg("-v")
            .arg(format!(
                "{}:/var/rapid/aws-lambda-rie:ro",
                setup.emulator.display()
            ));
        for layer in f["layers"].as_array().into_iter().flatten() {
            let dir = workspace().join(layer.as_str().unwrap_or_default());
            cmd.arg("-v").arg(format!("{}:/opt:ro", dir.display()));
        }
        for (host, ip) in setup.add_hosts {
            cmd.arg("--add-host").arg(format!("{host}:{ip}"));
        }
        let mut env: Vec<(String, String)> = Vec::new();
        for (k, v) in f["environment"].as_object().into_iter().flatten() {
            env.push((
                k.clone(),
                v.as_str().map(str::to_string).unwrap_or(v.to_string()),
            ));
        }
        for (k, v) in f["credentials"].as_object().into_iter().flatten() {
            env.push((k.clone(), v.as_str().unwrap_or_default().to_string()));
        }
        let function_name = f["name"].as_str().unwrap_or(logical);
        for (k, v) in [
            ("AWS_REGION", REGION.to_string()),
            ("AWS_DEFAULT_REGION", REGION.to_string()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name.to_string()),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory.to_string()),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
            ("AWS_LAMBDA_FUNCTION_TIMEOUT", f["timeout"].to_string()),
            (
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            ),
            (
                "AWS_EXECUTION_ENV",
                "AWS_Lambda_provided.al2023".to_string(),
            ),
            (
                "_HANDLER",
                f["handler"].as_str().unwrap_or("bootstrap").to_string(),
            ),
        ] {
            env.push((k.to_string(), v));
        }
        for (k, v) in &env {
            cmd.arg("-e").arg(format!("{k}={v}"));
        }
        cmd.args([
            "--entrypoint",
            "/var/rapid/aws-lambda-rie",
            setup.image,
            "/var/task/bootstrap",
        ]);
        run(&mut cmd, &format!("docker run ({binary})"))?;
        let published = run(
            Command::new("docker").args(["port", &name, "8080/tcp"]),
            "docker port",
        )
        .and_then(|port| {
            port.lines()
                .find(|l| l.starts_with("127.0.0.1:"))
                .map(|l| l.trim().to_string())
                .ok_or_else(|| format!("{name} published no port: {port}"))
        });
        match published {
            Ok(addr) => Ok((binary.to_string(), name, format!("http://{addr}"))),
            Err(e) => {
                let _ = Command::new("docker").args(["rm", "-f", &name]).output();
                Err(e)
            }
        }
    }

    /// The logs of one function's container.
    pub fn logs(&self, binary: &str) -> String {
        self.containers
            .iter()
            .find(|c| c.ends_with(&format!("-{binary}")))
            .map(|c| logs_of(c))
            .unwrap_or_default()
    }

    /// Invokes `binary` with `event`, as Lambda's Invoke API does.
    pub async fn invoke(&self, binary: &str, event: &Value) -> Result<Value, String> {
        let base = self
            .routes
            .get(binary)
            .ok_or_else(|| format!("no function {binary}"))?;
        let reply = reqwest::Client::new()
            .post(format!("{base}/2015-03-31/functions/function/invocations"))
            .json(event)
            .timeout(Duration::from_secs(330))
            .send()
            .await
            .map_err(|e| format!("invoke {binary}: {e}"))?;
        let text = reply.text().await.map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|_| format!("{binary} answered {text}"))
    }
}

pub fn logs_of(container: &str) -> String {
    Command::new("docker")
        .args(["logs", "--tail", "200", container])
        .output()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .unwrap_or_default()
}

impl Drop for Lambdas {
    fn drop(&mut self) {
        if !self.containers.is_empty() {
            let _ = Command::new("docker")
                .args(["rm", "-f"])
                .args(&self.containers)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

mod tokio_postgres_config {
    pub use tokio_postgres::config::{Config, Host};
}
