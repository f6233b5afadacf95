//! The connector's task, run as Fargate runs it (rehearsal::fargate): its image from the
//! Dockerfile's runtime stage, the container definition and volumes taken from template.yaml,
//! a read-only root, the image's user, /tmp as Fargate mounts it, the task's environment
//! and secret, and the task definition's health check on its interval, which must pass.
//! And the same task on an image without the Dockerfile's `VOLUME /tmp`, which must not.

use devkit::testdb::TestDb;
use rehearsal::fargate::{self, HealthStatus, Mounted, Task, TaskSpec};
use serde_json::{json, Value};
use serde_yaml_ng::Value as Yaml;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Whether Docker can run the connector here (see `rehearsal::can_run`).
fn docker_can_run(test: &str) -> bool {
    rehearsal::can_run(test, fargate::unavailable())
}

/// What the few intrinsics in ConnectorTaskDefinition resolve to in this test: parameters
/// take their template defaults unless overridden, resources their stand-in physical ids,
/// conditions are the template's own, evaluated on those. (A minimal resolver: anything it
/// does not know fails the test, so nothing resolves silently.)
struct Resolver {
    refs: HashMap<String, String>,
    conditions: Yaml,
}

impl Resolver {
    fn new(template: &Yaml, image: &str) -> Resolver {
        let mut refs = HashMap::new();
        for (name, param) in template["Parameters"].as_mapping().expect("Parameters") {
            if let (Some(name), Some(default)) = (name.as_str(), param.get("Default")) {
                let value = match default {
                    Yaml::String(s) => s.clone(),
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    _ => continue,
                };
                refs.insert(name.to_string(), value);
            }
        }
        for (k, v) in [
            ("ConnectorImage", image),
            // This machine's binary runs: the x86_64 build.
            ("Architecture", "x86_64"),
            ("AWS::StackName", "billwire"),
            ("AWS::Region", "us-east-1"),
            ("AWS::URLSuffix", "amazonaws.com"),
            ("AWS::Partition", "aws"),
            ("AWS::AccountId", "123456789012"),
            ("WebSocketApi", "rh0000ws01"),
            ("WebSocketStage", "production"),
            (
                "ConnectorDatabaseUrlSecret",
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:billwire-connector-database-url",
            ),
            ("ConnectorLogGroup", "/aws/ecs/billwire/connector"),
        ] {
            refs.insert(k.to_string(), v.to_string());
        }
        Resolver {
            refs,
            conditions: template["Conditions"].clone(),
        }
    }

    fn reference(&self, name: &str) -> String {
        self.refs
            .get(name)
            .unwrap_or_else(|| panic!("the test's resolver does not know !Ref {name}"))
            .clone()
    }

    fn sub(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${...}") + start;
            out.push_str(&self.reference(&rest[start + 2..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// A condition of the template's `Conditions`, evaluated.
    fn condition(&self, name: &str) -> bool {
        let expr = self
            .conditions
            .get(name)
            .unwrap_or_else(|| panic!("the template has no condition {name}"));
        self.holds(expr)
    }

    fn holds(&self, expr: &Yaml) -> bool {
        let Yaml::Tagged(tagged) = expr else {
            panic!("not a condition: {expr:?}");
        };
        let args = || tagged.value.as_sequence().expect("a list of arguments");
        match tagged.tag.to_string().trim_start_matches('!') {
            "Equals" => {
                let a = args();
                self.resolve(&a[0]) == self.resolve(&a[1])
            }
            "Not" => !self.holds(&args()[0]),
            "And" => args().iter().all(|c| self.holds(c)),
            "Or" => args().iter().any(|c| self.holds(c)),
            "Condition" => self.condition(tagged.value.as_str().expect("a condition name")),
            other => panic!("the test's resolver does not know !{other} in a condition"),
        }
    }

    fn resolve(&self, v: &Yaml) -> Value {
        match v {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => json!(b),
            Yaml::Number(n) => serde_json::to_value(n).expect("number"),
            Yaml::String(s) => json!(s),
            Yaml::Sequence(items) => Value::Array(items.iter().map(|i| self.resolve(i)).collect()),
            Yaml::Mapping(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| (k.as_str().expect("string key").to_string(), self.resolve(v)))
                    .collect(),
            ),
            Yaml::Tagged(tagged) => {
                let tag = tagged.tag.to_string();
                match tag.trim_start_matches('!') {
                    "Ref" => json!(self.reference(tagged.value.as_str().expect("!Ref name"))),
                    "Sub" => json!(self.sub(tagged.value.as_str().expect("!Sub string"))),
                    "GetAtt" => json!(format!(
                        "arn:aws:stand-in:::{}",
                        tagged.value.as_str().expect("!GetAtt name")
                    )),
                    "If" => {
                        let args = tagged.value.as_sequence().expect("!If [c, a, b]");
                        let holds = self.condition(args[0].as_str().expect("condition name"));
                        self.resolve(&args[if holds { 1 } else { 2 }])
                    }
                    other => panic!("the test's resolver does not know !{other}"),
                }
            }
        }
    }
}

/// The connector's task definition from template.yaml, resolved for `image`.
fn task_definition(image: &str) -> Value {
    let path = devkit::workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).expect("template.yaml");
    let template: Yaml = serde_yaml_ng::from_str(&text).expect("template.yaml is YAML");
    let resolver = Resolver::new(&template, image);
    let task = resolver.resolve(&template["Resources"]["ConnectorTaskDefinition"]["Properties"]);
    assert_eq!(task["RequiresCompatibilities"], json!(["FARGATE"]));
    task
}

/// A fresh migrated database, the image, and the connector's task as the template declares
/// it, reaching the database through a bridge on Docker's gateway.
struct World {
    _db: TestDb,
    _bridge: samlocal::DbBridge,
    spec: TaskSpec,
}

async fn world(test: &str, image: String) -> World {
    let db = TestDb::new().await;
    let bridge = samlocal::DbBridge::start(&db.url, 0)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let database_url = bridge.container_url(&db.url).expect("database URL");
    let gateway = samlocal::docker_host_gateway().unwrap_or_else(|e| panic!("{e}"));
    let task = task_definition(&image);
    let container = task["ContainerDefinitions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["Name"] == "connector"))
        .expect("a container named connector")
        .clone();

    // What the test relies on is what the template says.
    assert_eq!(container["ReadonlyRootFilesystem"], json!(true));
    assert!(container.get("User").is_none(), "the image's user runs");
    let health_file = container["Environment"]
        .as_array()
        .and_then(|e| e.iter().find(|v| v["Name"] == "CONNECTOR_HEALTH_FILE"))
        .and_then(|v| v["Value"].as_str())
        .expect("CONNECTOR_HEALTH_FILE")
        .to_string();
    let tmp = container["MountPoints"]
        .as_array()
        .and_then(|m| m.iter().find(|p| p["ContainerPath"] == "/tmp"))
        .expect("a mount point at /tmp");
    assert!(
        health_file.starts_with("/tmp/"),
        "the health file ({health_file}) is on the /tmp volume"
    );
    assert_eq!(tmp["ReadOnly"], json!(false));
    assert_eq!(
        container["HealthCheck"]["Command"],
        json!(["CMD", "/usr/local/bin/connector", "health"])
    );

    let spec = TaskSpec {
        name: format!("rehearsal-{test}"),
        image,
        container,
        volumes: task["Volumes"].clone(),
        secrets: vec![("DATABASE_URL".into(), database_url)],
        credentials: vec![
            ("AWS_ACCESS_KEY_ID".into(), "ASIAREHEARSALTASKROLE".into()),
            (
                "AWS_SECRET_ACCESS_KEY".into(),
                "rehearsal-task-role-secret".into(),
            ),
            (
                "AWS_SESSION_TOKEN".into(),
                "rehearsal-task-role-session".into(),
            ),
        ],
        add_hosts: vec![(samlocal::HOST_ALIAS.into(), gateway)],
        region: "us-east-1".into(),
        task_cpu: task["Cpu"].as_str().map(str::to_string),
        task_memory: task["Memory"].as_str().map(str::to_string),
    };
    World {
        _db: db,
        _bridge: bridge,
        spec,
    }
}

async fn start(spec: TaskSpec) -> Task {
    tokio::task::spawn_blocking(move || Task::start(spec))
        .await
        .expect("start task")
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Generous: the check first runs 15 s after the start (Interval), and an UNHEALTHY verdict
/// needs three counted failures after the 30 s start period: about 75 s.
const VERDICT_WITHIN: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connector_task_becomes_healthy_as_fargate_runs_it() {
    if !docker_can_run("the_connector_task_becomes_healthy_as_fargate_runs_it") {
        return;
    }
    let built = Instant::now();
    let image = tokio::task::spawn_blocking(|| fargate::connector_image(None))
        .await
        .expect("image task")
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("image {image} ready in {:?}", built.elapsed());
    let world = world("healthy", image).await;

    let started = Instant::now();
    let mut task = start(world.spec.clone()).await;
    if let Err(e) = task.wait_healthy(VERDICT_WITHIN).await {
        panic!("{e}");
    }
    eprintln!("HEALTHY {:?} after the start", started.elapsed());
    // The Dockerfile declares VOLUME /tmp, so the bind volume starts as the image's /tmp.
    assert!(
        matches!(task.mounts(), [Mounted::ImageVolume { container_path, .. }] if container_path == "/tmp"),
        "{:?}",
        task.mounts()
    );
    assert_eq!(task.health(), HealthStatus::Healthy);
    let passed = task
        .probes()
        .into_iter()
        .rfind(|p| p.exit_code == Some(0))
        .expect("a passing check");
    assert!(passed.output.starts_with("healthy: "), "{}", passed.output);

    // ECS stops it with the image's STOPSIGNAL; it must exit cleanly within StopTimeout.
    let stopping = Instant::now();
    let code = task.stop().await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        code,
        0,
        "the connector exits 0 on SIGTERM:\n{}",
        task.logs()
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(30),
        "stopped before StopTimeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_volume_declaration_the_task_is_unhealthy() {
    if !docker_can_run("without_the_volume_declaration_the_task_is_unhealthy") {
        return;
    }
    // The same runtime stage without its VOLUME line: what the Dockerfile was before the fix.
    let path = devkit::workspace_root().join("infra/connector.Dockerfile");
    let text = std::fs::read_to_string(&path).expect("infra/connector.Dockerfile");
    let without: String = text
        .lines()
        .filter(|l| !l.trim_start().to_ascii_uppercase().starts_with("VOLUME"))
        .map(|l| format!("{l}\n"))
        .collect();
    let image = tokio::task::spawn_blocking(move || {
        fargate::runtime_stage_image(&without, "billwire/connector:rehearsal-no-volume", None)
    })
    .await
    .expect("image task")
    .unwrap_or_else(|e| panic!("{e}"));
    let world = world("no-volume", image).await;

    let task = start(world.spec.clone()).await;
    // Fargate's bind volume as it makes it without a VOLUME: empty, root's, 0755.
    assert!(
        matches!(task.mounts(), [Mounted::EmptyDirectory { container_path, .. }] if container_path == "/tmp"),
        "{:?}",
        task.mounts()
    );
    let verdict = task.wait_healthy(VERDICT_WITHIN).await;
    let err = match verdict {
        Ok(()) => panic!(
            "the task became HEALTHY although nonroot cannot write /tmp:\n{}",
            task.logs()
        ),
        Err(e) => e,
    };
    eprintln!("{err}");
    assert_eq!(task.health(), HealthStatus::Unhealthy, "{err}");
    assert!(err.contains("UNHEALTHY"), "{err}");
    assert!(
        err.contains("unhealthy: no health file at /tmp/billwire-connector.health"),
        "{err}"
    );
    // The process itself runs and reaches its database; only the file cannot be written.
    assert!(
        task.logs().contains("cannot update the health file"),
        "{}",
        task.logs()
    );
    let counted = task.probes().iter().filter(|p| p.counted).count();
    assert_eq!(
        counted, 3,
        "Retries counted failures after the start period"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shell_health_check_fails_on_the_shell_less_image() {
    if !docker_can_run("a_shell_health_check_fails_on_the_shell_less_image") {
        return;
    }
    let image = tokio::task::spawn_blocking(|| fargate::connector_image(None))
        .await
        .expect("image task")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut world = world("cmd-shell", image).await;
    // The same command as CMD-SHELL, on a quick schedule: ECS runs it with /bin/sh -c, which
    // distroless does not have, so it fails however healthy the connector is.
    world.spec.container["HealthCheck"] = json!({
        "Command": ["CMD-SHELL", "/usr/local/bin/connector health"],
        "Interval": 5, "Timeout": 5, "Retries": 1, "StartPeriod": 0
    });
    let task = start(world.spec.clone()).await;
    let err = match task.wait_healthy(Duration::from_secs(120)).await {
        Ok(()) => panic!("a CMD-SHELL check passed on an image without a shell"),
        Err(e) => e,
    };
    assert_eq!(task.health(), HealthStatus::Unhealthy, "{err}");
    assert!(
        err.contains("UNHEALTHY") && err.contains("/bin/sh"),
        "{err}"
    );
}
