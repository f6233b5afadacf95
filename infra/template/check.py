#!/usr/bin/env python3
"""Checks template.yaml: cfn-lint, `sam validate --lint`, checkov, and the wiring of the
template as SAM's own translator expands it (offline: the managed-policy map bundled with
samtranslator stands in for IAM's ListPolicies), in several parameter layouts, each with its
conditions resolved the way CloudFormation would. Also lints and checks the optional
templates in infra/aws/ (network.yaml: the fresh-account VPC and database; waf.yaml: the
CloudFront web ACL).

    python3 infra/template/check.py [template.yaml]     # from the repository root

Run by `cargo test -p template-checks` (tests/checks.rs) in a venv with requirements.txt.
Exits non-zero with every problem listed.
"""

import copy
import json
import os
import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent

problems: list[str] = []


def problem(msg: str) -> None:
    problems.append(msg)
    print(f"  FAIL {msg}")


def run_tool(name: str, args: list[str]) -> None:
    exe = BIN / name
    cmd = [str(exe) if exe.exists() else name, *args]
    print(f"== {' '.join(cmd)}")
    env = dict(os.environ, SAM_CLI_TELEMETRY="0", AWS_DEFAULT_REGION="us-east-1")
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    out = (result.stdout + result.stderr).strip()
    if out:
        print("\n".join("   " + line for line in out.splitlines()[-40:]))
    if result.returncode != 0:
        problem(f"{name} exited with {result.returncode}")


# ---------------------------------------------------------------- the translator check


def load_yaml(path: Path):
    """The template with CloudFormation's short-form tags (!Ref, !Sub, ...) as long form."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader, suffix, node):
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", construct)
    return yaml.load(path.read_text(), Loader=Loader)


class BundledPolicies:
    """samtranslator's ManagedPolicyLoader, without calling IAM."""

    def load(self):
        from samtranslator.internal.managed_policies import get_bundled_managed_policy_map

        return get_bundled_managed_policy_map("aws") or {}


def translate(template: dict, params: dict) -> dict:
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(copy.deepcopy(template), params, BundledPolicies())


def refs_in(value) -> set[str]:
    """Logical ids a value refers to (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "Ref" and isinstance(v, str):
                found.add(v)
            elif k == "Fn::GetAtt":
                target = v[0] if isinstance(v, list) else str(v).split(".")[0]
                found.add(target)
            elif k == "Fn::Sub":
                text = v[0] if isinstance(v, list) else v
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(v, list):
                    found.update(refs_in(v[1]))
            else:
                found.update(refs_in(v))
    elif isinstance(value, list):
        for v in value:
            found.update(refs_in(v))
    return found


def depends_on(resource: dict) -> set[str]:
    d = resource.get("DependsOn", [])
    return {d} if isinstance(d, str) else set(d)


def ancestors(resources: dict, start: str) -> set[str]:
    """Everything `start` waits for: DependsOn and references, transitively."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        rid = todo.pop()
        r = resources.get(rid)
        if r is None:
            continue
        for dep in depends_on(r) | refs_in(r.get("Properties", {})):
            if dep in resources and dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def policy_statements(resource: dict):
    props = resource.get("Properties", {})
    for policy in props.get("Policies", []) or []:
        doc = policy.get("PolicyDocument", {})
        yield from doc.get("Statement", [])
    if resource["Type"] == "AWS::IAM::ManagedPolicy":
        yield from props.get("PolicyDocument", {}).get("Statement", [])


def as_list(v):
    return v if isinstance(v, list) else [v]


# ------------------------------------------------- conditions, resolved as CloudFormation does

PSEUDO = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "billwire",
}


def parameter_values(template: dict, given: dict) -> dict:
    """Every parameter's value in a deploy with `given`: the rest at their defaults."""
    values = {}
    for name, p in template.get("Parameters", {}).items():
        v = given.get(name, p.get("Default"))
        if p.get("Type") == "CommaDelimitedList" and isinstance(v, str):
            v = v.split(",")
        values[name] = v
    return values


def resolve(cfn: dict, values: dict) -> dict:
    """The template as CloudFormation deploys it with these parameter values: conditions
    evaluated, resources and outputs whose condition is false gone, Fn::If replaced by its
    branch, AWS::NoValue removed. Other intrinsics stay as they are."""
    conditions = cfn.get("Conditions", {})
    cache: dict[str, bool] = {}

    def value(x):
        if isinstance(x, dict) and len(x) == 1:
            (k, v), = x.items()
            if k == "Ref":
                return values[v] if v in values else PSEUDO.get(v, x)
            if k == "Fn::Join":
                parts = value(v[1])
                parts = parts if isinstance(parts, list) else [parts]
                return v[0].join(str(value(p)) for p in parts)
            if k == "Fn::Select":
                return value(v[1])[int(v[0])]
        if isinstance(x, list):
            return [value(i) for i in x]
        return x

    def holds(x) -> bool:
        (k, v), = x.items()
        if k in ("Condition", "Fn::Condition"):  # the loader spells !Condition Fn::Condition
            return condition(v)
        if k == "Fn::Equals":
            return value(v[0]) == value(v[1])
        if k == "Fn::Not":
            return not holds(v[0])
        if k == "Fn::And":
            return all(holds(i) for i in v)
        if k == "Fn::Or":
            return any(holds(i) for i in v)
        raise ValueError(f"cannot evaluate condition {x}")

    def condition(name: str) -> bool:
        if name not in cache:
            cache[name] = holds(conditions[name])
        return cache[name]

    NO = object()

    def walk(x):
        if isinstance(x, dict):
            if x == {"Ref": "AWS::NoValue"}:
                return NO
            if len(x) == 1 and "Fn::If" in x:
                c, yes, no = x["Fn::If"]
                return walk(yes if condition(c) else no)
            out = {}
            for k, v in x.items():
                w = walk(v)
                if w is not NO:
                    out[k] = w
            return out
        if isinstance(x, list):
            return [w for w in (walk(i) for i in x) if w is not NO]
        return x

    out = copy.deepcopy(cfn)
    for section in ("Resources", "Outputs"):
        kept = {}
        for rid, r in out.get(section, {}).items():
            if "Condition" in r and not condition(r["Condition"]):
                continue
            kept[rid] = walk(r)
        out[section] = kept
    out["ConditionValues"] = {name: condition(name) for name in conditions}
    return out


def env_of(resource: dict) -> dict:
    return resource.get("Properties", {}).get("Environment", {}).get("Variables", {})


def role_statements(res: dict, function: dict):
    """The IAM statements of a function's execution role, managed policies of this stack
    included."""
    role = next(iter(refs_in(function["Properties"].get("Role", {})) & set(res)), None)
    if role is None:
        return
    yield from policy_statements(res[role])
    for arn in res[role]["Properties"].get("ManagedPolicyArns", []):
        for ref in refs_in(arn) & set(res):
            yield from policy_statements(res[ref])


def wiring(template: dict, cfn: dict, label: str, values: dict) -> None:
    print(f"== wiring ({label})")
    sam_resources = template["Resources"]
    res = cfn["Resources"]
    functions = {
        rid: r
        for rid, r in sam_resources.items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    binaries = {rid: r["Metadata"]["BuildProperties"]["Binary"] for rid, r in functions.items()}

    # Every function crate is deployed, and nothing else.
    crates = sorted(p.parent.name for p in (ROOT / "functions").glob("*/Cargo.toml"))
    if sorted(binaries.values()) != crates:
        problem(f"functions in the template {sorted(binaries.values())} != crates {crates}")

    # Routes after translation: the HTTP API's OpenAPI body names each integration's function.
    http_apis = [r for r in res.values() if r["Type"] == "AWS::ApiGatewayV2::Api" and "Body" in r["Properties"]]
    if len(http_apis) != 1:
        problem(f"expected one HTTP API with an OpenAPI body, found {len(http_apis)}")
        return
    body = http_apis[0]["Properties"]["Body"]
    routed: dict[str, str] = {}
    for path, methods in body.get("paths", {}).items():
        for method, op in methods.items():
            integration = op.get("x-amazon-apigateway-integration", {})
            targets = refs_in(integration.get("uri", {}))
            fn = next((t for t in targets if t in functions), None)
            if fn is None:
                problem(f"{method.upper()} {path} has no function")
                continue
            routed[f"{method.upper()} {path}"] = fn
    http_functions = set(routed.values())

    # WebSocket routes: Route -> Integration -> function.
    ws_functions: set[str] = set()
    for rid, r in res.items():
        if r["Type"] != "AWS::ApiGatewayV2::Route":
            continue
        integ = next(iter(refs_in(r["Properties"].get("Target", {})) & set(res)), None)
        fn = next(iter(refs_in(res.get(integ, {}).get("Properties", {}).get("IntegrationUri", {})) & set(functions)), None)
        if fn is None:
            problem(f"WebSocket route {rid} reaches no function")
        else:
            ws_functions.add(fn)
        # Each WebSocket function may be invoked by API Gateway from this API only.
        perms = [
            p for p in res.values()
            if p["Type"] == "AWS::Lambda::Permission" and fn in refs_in(p["Properties"].get("FunctionName"))
        ]
        if not perms or any("WebSocketApi" not in refs_in(p["Properties"].get("SourceArn")) for p in perms):
            problem(f"{fn}: no lambda:InvokeFunction permission scoped to WebSocketApi")

    for rid in functions:
        if rid == "DbMigrateFunction":
            continue
        if rid not in http_functions and rid not in ws_functions:
            problem(f"{rid} ({binaries[rid]}) has no route")
    for rid, props in functions.items():
        events = (props["Properties"].get("Events") or {}).values()
        for e in events:
            key = f"{e['Properties']['Method'].upper()} {e['Properties']['Path']}"
            if routed.get(key) != rid:
                problem(f"{key}: the translated API routes it to {routed.get(key)}, not {rid}")

    # Throttling on the stage, tighter on the argon2 routes.
    stages = [r for r in res.values() if r["Type"] == "AWS::ApiGatewayV2::Stage" and refs_in(r["Properties"].get("ApiId")) & {"HttpApi"}]
    if not stages:
        problem("the HTTP API has no stage")
    for stage in stages:
        default = stage["Properties"].get("DefaultRouteSettings", {})
        if not default.get("ThrottlingRateLimit"):
            problem("the HTTP API stage has no default throttling")
        per_route = stage["Properties"].get("RouteSettings", {})
        for key in ["POST /api/v1/auth/login", "POST /api/v1/auth/register", "POST /api/v1/accounts"]:
            limit = per_route.get(key, {}).get("ThrottlingRateLimit")
            if not limit or limit >= default.get("ThrottlingRateLimit", 0):
                problem(f"{key} is not throttled tighter than the default")
            if key not in routed:
                problem(f"throttled route {key} does not exist")

    # The migration resource comes before every function and the connector.
    migrations = [rid for rid, r in res.items() if r["Type"] == "Custom::Migrations"]
    if migrations != ["Migrations"]:
        problem(f"expected one Custom::Migrations named Migrations, found {migrations}")
        return
    mig = res["Migrations"]["Properties"]
    if "DbMigrateFunction" not in refs_in(mig.get("ServiceToken")):
        problem("Migrations is not served by DbMigrateFunction")
    version_refs = refs_in(mig.get("MigrationsVersion"))
    if not any(res.get(v, {}).get("Type") == "AWS::Lambda::Version" for v in version_refs):
        problem("MigrationsVersion must be db-migrate's published version (it changes with every new binary)")
    for rid in functions:
        if rid == "DbMigrateFunction":
            continue
        if "Migrations" not in ancestors(res, rid):
            problem(f"{rid} does not wait for Migrations")
    if "ConnectorService" in res and "Migrations" not in ancestors(res, "ConnectorService"):
        problem("ConnectorService does not wait for Migrations")
    if "Migrations" in ancestors(res, "DbMigrateFunction"):
        problem("DbMigrateFunction depends on Migrations (a cycle)")

    # IAM: execute-api only on this WebSocket API's connections, and only for the connector;
    # secrets only those named; no wildcards.
    secret_ids = {rid for rid, r in res.items() if r["Type"] == "AWS::SecretsManager::Secret"}
    # A secret by ARN (DatabaseUrlSecretArn, e.g. infra/aws/network.yaml's) counts as one of
    # this stack's: a reference to that parameter, only when it is set.
    secret_params = {"DatabaseUrlSecretArn"} if values.get("DatabaseUrlSecretArn") else set()
    readable_secrets = secret_ids | secret_params
    for rid, r in res.items():
        if r["Type"] not in ("AWS::IAM::Role", "AWS::IAM::ManagedPolicy"):
            continue
        for st in policy_statements(r):
            actions = as_list(st.get("Action", []))
            resources = as_list(st.get("Resource", []))
            if any(a in ("*", "execute-api:*", "secretsmanager:*") for a in actions):
                problem(f"{rid}: wildcard action {actions}")
            if any(a.startswith("execute-api:") for a in actions):
                if rid != "ConnectorTaskRole":
                    problem(f"{rid} may call {actions}; only the connector's task role should")
                for resource in resources:
                    text = json.dumps(resource)
                    if "WebSocketApi" not in refs_in(resource) or "@connections" not in text:
                        problem(f"{rid}: execute-api on {text}, not this WebSocket API's @connections")
            if any(a.startswith("secretsmanager:") for a in actions):
                for resource in resources:
                    if resource == "*" or not (refs_in(resource) & readable_secrets):
                        problem(f"{rid}: secretsmanager on {json.dumps(resource)}, not one of this stack's secrets")
    exec_role = res.get("ConnectorExecutionRole")
    if exec_role:
        readable = set().union(*(refs_in(st.get("Resource")) for st in policy_statements(exec_role)))
        container = res["ConnectorTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        named = set().union(*(refs_in(x.get("ValueFrom")) for x in container.get("Secrets", [])))
        if len(readable & readable_secrets) != 1 or readable & readable_secrets != named & readable_secrets:
            problem(f"the connector's execution role reads {readable & readable_secrets}, "
                    f"its task's Secrets name {named & readable_secrets}: they must be the one database URL")
        wanted = "DatabaseUrlSecretArn" if values.get("DatabaseUrlSecretArn") and not values.get("ConnectorDatabaseUrl") else "ConnectorDatabaseUrlSecret"
        if named & readable_secrets != {wanted}:
            problem(f"the connector's DATABASE_URL comes from {named & readable_secrets}, expected {wanted}")

    # Each function may read the secrets it needs: its DATABASE_URL_SECRET_ARN (every one),
    # JWT_SECRET_SECRET_ARN (all but db-migrate) and WEBHOOK_SECRET_SECRET_ARN (the webhook).
    database_url = "DatabaseUrlSecretArn" if values.get("DatabaseUrlSecretArn") else "DatabaseUrlSecret"
    for rid in functions:
        fn = res.get(rid)
        if fn is None:
            continue
        env = env_of(fn)
        needs = {"DATABASE_URL_SECRET_ARN"}
        if rid != "DbMigrateFunction":
            needs.add("JWT_SECRET_SECRET_ARN")
        if rid == "PaymentsWebhookFunction":
            needs.add("WEBHOOK_SECRET_SECRET_ARN")
        granted = set().union(*(
            refs_in(st.get("Resource"))
            for st in role_statements(res, fn)
            if any(a == "secretsmanager:GetSecretValue" for a in as_list(st.get("Action", [])))
        ))
        for name in sorted(needs):
            if name not in env:
                problem(f"{rid} has no {name}")
                continue
            target = refs_in(env[name]) & readable_secrets
            if not target:
                problem(f"{rid}: {name} names no secret of this stack")
            elif not target <= granted:
                problem(f"{rid}: {name} names {target}, which its role may not read (it may read {granted & readable_secrets})")
        if refs_in(env.get("DATABASE_URL_SECRET_ARN")) & readable_secrets != {database_url}:
            problem(f"{rid}: DATABASE_URL_SECRET_ARN is {env.get('DATABASE_URL_SECRET_ARN')}, expected {database_url}")

    # Functions see secret ARNs, never values; each logs to its declared group.
    for rid, r in res.items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        env = r["Properties"].get("Environment", {}).get("Variables", {})
        for name in ("DATABASE_URL", "JWT_SECRET", "WEBHOOK_SECRET"):
            if name in env:
                problem(f"{rid} has {name} in its environment; it should get {name}_SECRET_ARN")
        log_group = refs_in(r["Properties"].get("LoggingConfig", {}).get("LogGroup"))
        if not any(res.get(g, {}).get("Type") == "AWS::Logs::LogGroup" for g in log_group):
            problem(f"{rid} does not log to a declared log group")
        if "FunctionName" in r["Properties"]:
            problem(f"{rid} has an explicit FunctionName (stack names would be limited)")
    for rid, r in res.items():
        if r["Type"] == "AWS::Logs::LogGroup" and "RetentionInDays" not in r["Properties"]:
            problem(f"{rid} keeps logs forever")

    # The connector: circuit breaker, health check, secrets by reference.
    svc = res.get("ConnectorService")
    if svc:
        cb = svc["Properties"]["DeploymentConfiguration"].get("DeploymentCircuitBreaker", {})
        if cb != {"Enable": True, "Rollback": True}:
            problem(f"ConnectorService circuit breaker is {cb}")
        container = res["ConnectorTaskDefinition"]["Properties"]["ContainerDefinitions"][0]
        if container.get("HealthCheck", {}).get("Command", [None])[0] != "CMD":
            problem("the connector's container has no health check")
        if not any(s["Name"] == "DATABASE_URL" for s in container.get("Secrets", [])):
            problem("the connector's DATABASE_URL is not a Secrets entry")
        if any(e["Name"] == "DATABASE_URL" for e in container.get("Environment", [])):
            problem("the connector's DATABASE_URL is in plain Environment")
    operations(template, res, values)
    print(f"   {len(routed)} HTTP routes, {len(ws_functions)} WebSocket functions, {len(functions)} functions checked")


CACHED_ERRORS = {400, 403, 404, 405, 414, 500, 501, 502, 503, 504}


def alarm_metrics(alarm: dict):
    """(namespace, metric name, dimension refs) for every metric an alarm evaluates."""
    props = alarm["Properties"]
    if "MetricName" in props:
        yield props.get("Namespace"), props["MetricName"], refs_in(props.get("Dimensions", []))
    for m in props.get("Metrics", []):
        stat = m.get("MetricStat", {}).get("Metric")
        if stat:
            yield stat.get("Namespace"), stat.get("MetricName"), refs_in(stat.get("Dimensions", []))


def operations(template: dict, res: dict, values: dict) -> None:
    """Alarms, restarts on a new Revision, the migration resource's timeout, CloudFront's
    error caching, origin header and web ACL, the WebSocket domain's alias record, the layer's
    retention."""
    alarms = [r for r in res.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    watched = [m for a in alarms for m in alarm_metrics(a)]
    functions = [rid for rid, r in res.items() if r["Type"] == "AWS::Lambda::Function"]
    for rid in functions:
        for metric in ("Errors", "Throttles"):
            if not any(ns == "AWS/Lambda" and name == metric and rid in dims for ns, name, dims in watched):
                problem(f"{rid}: no alarm on its Lambda {metric}")
    if not any(ns == "AWS/ApiGateway" and name == "5xx" and "HttpApi" in dims for ns, name, dims in watched):
        problem("no alarm on the HTTP API's 5xx")
    for a in alarms:
        actions = a["Properties"].get("AlarmActions")
        if values.get("AlarmEmail") and not (actions and refs_in(actions) & {"AlarmTopic"}):
            problem(f"an alarm ({a['Properties'].get('AlarmDescription')}) does not notify AlarmTopic")

    # A new Revision reaches every function and the connector's task (they read secrets once).
    for rid in functions:
        if env_of(res[rid]).get("BILLWIRE_REVISION") != {"Ref": "Revision"}:
            problem(f"{rid}: BILLWIRE_REVISION is not the Revision parameter")
    task = res.get("ConnectorTaskDefinition")
    if task:
        container = task["Properties"]["ContainerDefinitions"][0]
        env = {e["Name"]: e["Value"] for e in container.get("Environment", [])}
        if env.get("BILLWIRE_REVISION") != {"Ref": "Revision"}:
            problem("the connector's task: BILLWIRE_REVISION is not the Revision parameter")
        leader = res.get("NoLeaderAlarm")
        if not leader:
            problem("the connector has no NoLeaderAlarm")
        else:
            dims = {d["Name"]: d["Value"] for d in leader["Properties"].get("Dimensions", [])}
            if dims.get("Service") != env.get("CONNECTOR_METRICS_SERVICE"):
                problem(f"NoLeaderAlarm watches Service={dims.get('Service')}, the connector emits {env.get('CONNECTOR_METRICS_SERVICE')}")

    # CloudFormation must give up on db-migrate after its Timeout (it answers by then) and
    # long before the default hour.
    timeout = res["Migrations"]["Properties"].get("ServiceTimeout")
    migrate_timeout = res["DbMigrateFunction"]["Properties"].get("Timeout", 3)
    if not isinstance(timeout, int) or not migrate_timeout < timeout < 3600:
        problem(f"Migrations' ServiceTimeout is {timeout}: it must lie between db-migrate's Timeout ({migrate_timeout}) and 3600")

    for rid, r in res.items():
        if r["Type"] == "AWS::Lambda::LayerVersion" and r.get("DeletionPolicy") != "Delete":
            problem(f"{rid} is retained after an update or `sam delete` (DeletionPolicy {r.get('DeletionPolicy')})")

    dist = res["Distribution"]["Properties"]["DistributionConfig"]
    uncached = {e["ErrorCode"] for e in dist.get("CustomErrorResponses", []) if e.get("ErrorCachingMinTTL") == 0}
    if CACHED_ERRORS - uncached:
        problem(f"CloudFront caches errors {sorted(CACHED_ERRORS - uncached)} (ErrorCachingMinTTL is not 0)")
    api_origin = next((o for o in dist["Origins"] if o["Id"] == "http-api"), {})
    headers = {h["HeaderName"]: h["HeaderValue"] for h in api_origin.get("OriginCustomHeaders", [])}
    if "OriginVerifySecret" not in refs_in(headers.get("X-Billwire-Origin", {})):
        problem("CloudFront does not send the HTTP API X-Billwire-Origin from OriginVerifySecret")
    if bool(values.get("WebAclArn")) != ("WebACLId" in dist):
        problem(f"the distribution's WebACLId is {dist.get('WebACLId')} with WebAclArn={values.get('WebAclArn')!r}")

    records = [r for r in res.values() if r["Type"] == "AWS::Route53::RecordSet"]
    if any(r["Properties"].get("Type") == "CNAME" for r in records):
        problem("a CNAME record: the WebSocket domain must be an alias (a CNAME to execute-api answers 403 in VPCs with private DNS)")
    if values.get("WebSocketHostedZoneId"):
        alias = [r for r in records if "WebSocketDomain" in refs_in(r["Properties"].get("AliasTarget", {}))]
        if len(alias) != 1 or alias[0]["Properties"].get("Type") != "A":
            problem("WebSocketHostedZoneId is set but there is no alias A record for WebSocketDomain")


def check_parameters(template: dict) -> None:
    """A plain `sam deploy` with today's required parameters keeps working: every other
    parameter has a default."""
    required = sorted(name for name, p in template["Parameters"].items() if "Default" not in p)
    if required != ["JwtSecret", "WebhookSecret"]:
        problem(f"parameters without a default: {required} (only JwtSecret and WebhookSecret may be required)")
    for name in ("Revision", "DatabaseUrlSecretArn", "WebAclArn", "WebSocketHostedZoneId"):
        if name not in template["Parameters"]:
            problem(f"parameter {name} is missing")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    expected = {"DATABASE_URL_SECRET_ARN", "JWT_SECRET_SECRET_ARN", "DATABASE_CA_FILE",
                "ACCESS_TOKEN_TTL_SECONDS", "RUST_LOG", "BILLWIRE_REVISION",
                "ORIGIN_VERIFY_SECRET_SECRET_ARN"}
    if set(variables) != expected:
        problem(f"Globals.Function.Environment has {sorted(variables)}, expected {sorted(expected)}")
    # The functions check the very secret CloudFront sends (shared/src/api/lambda.rs).
    if variables.get("ORIGIN_VERIFY_SECRET_SECRET_ARN") != {"Ref": "OriginVerifySecret"}:
        problem("ORIGIN_VERIFY_SECRET_SECRET_ARN is not the OriginVerifySecret CloudFront sends")


# ------------------------------------------------------------- infra/aws/network.yaml, waf.yaml


def check_network(path: Path) -> None:
    """The fresh-account network and database: what the main stack and the README rely on."""
    print(f"== wiring ({path.relative_to(ROOT)})")
    t = load_yaml(path)
    res = t["Resources"]
    dbs = [r for r in res.values() if r["Type"] == "AWS::RDS::DBInstance"]
    if len(dbs) != 1:
        problem(f"network.yaml: expected one DB instance, found {len(dbs)}")
        return
    db = dbs[0]
    p = db["Properties"]
    if p.get("DBName") != "billwire":
        problem("network.yaml: without DBName billwire, RDS creates only the postgres database")
    if p.get("Engine") != "postgres":
        problem(f"network.yaml: engine {p.get('Engine')}, expected postgres")
    versions = t["Parameters"]["PostgresMajorVersion"]
    if any(int(v) < 15 for v in versions.get("AllowedValues", [])):
        problem("network.yaml: PostgreSQL 15+ only")
    if "ManageMasterUserPassword" in p:
        problem("network.yaml: RDS-managed master credentials rotate weekly and break the copied URL")
    if p.get("PubliclyAccessible") is not False or p.get("StorageEncrypted") is not True:
        problem("network.yaml: the database must be private and encrypted")
    if db.get("DeletionPolicy") != "Snapshot" or db.get("UpdateReplacePolicy") != "Snapshot":
        problem("network.yaml: the database's DeletionPolicy/UpdateReplacePolicy must be Snapshot (README, Teardown)")
    params = next((r for r in res.values() if r["Type"] == "AWS::RDS::DBParameterGroup"), None)
    if not params or params["Properties"].get("Parameters", {}).get("rds.force_ssl") != "1":
        problem("network.yaml: the parameter group must set rds.force_ssl=1")
    # The password: generated without characters a URL would need encoded.
    secret_refs = refs_in(p.get("MasterUserPassword"))
    creds = [res[r] for r in secret_refs if r in res]
    gen = creds[0]["Properties"].get("GenerateSecretString", {}) if creds else {}
    if not gen.get("ExcludePunctuation"):
        problem("network.yaml: the master password must be generated with ExcludePunctuation (no URL encoding)")
    urls = [
        (rid, r) for rid, r in res.items()
        if r["Type"] == "AWS::SecretsManager::Secret" and "postgres://" in json.dumps(r["Properties"].get("SecretString", ""))
    ]
    if len(urls) != 1:
        problem("network.yaml: expected one secret holding the database URL")
    else:
        rid, url = urls[0]
        text = json.dumps(url["Properties"]["SecretString"])
        if "/billwire?sslmode=require" not in text:
            problem("network.yaml: the URL must name the billwire database and require TLS")
        outputs = {k: refs_in(v.get("Value")) for k, v in t["Outputs"].items()}
        if outputs.get("DatabaseUrlSecretArn") != {rid}:
            problem("network.yaml: the DatabaseUrlSecretArn output must be the URL secret")
    for name in ("PrivateSubnetIds", "AppSecurityGroupId", "DatabaseUrlSecretArn", "MainStackParameters"):
        if name not in t["Outputs"]:
            problem(f"network.yaml: output {name} is missing")
    # The private subnets leave through the NAT gateway; the database admits only the app.
    routes = [r for r in res.values() if r["Type"] == "AWS::EC2::Route" and "NatGatewayId" in r["Properties"]]
    if not routes:
        problem("network.yaml: no default route to a NAT gateway")
    ingress = [r["Properties"] for r in res.values() if r["Type"] == "AWS::EC2::SecurityGroupIngress"]
    if not ingress or any(i.get("FromPort") != 5432 or "SourceSecurityGroupId" not in i for i in ingress):
        problem("network.yaml: the database must admit only the app security group on 5432")


def check_waf(path: Path) -> None:
    print(f"== wiring ({path.relative_to(ROOT)})")
    t = load_yaml(path)
    acls = [r for r in t["Resources"].values() if r["Type"] == "AWS::WAFv2::WebACL"]
    if len(acls) != 1 or acls[0]["Properties"].get("Scope") != "CLOUDFRONT":
        problem("waf.yaml: expected one web ACL of scope CLOUDFRONT")
        return
    limits = {}
    for rule in acls[0]["Properties"].get("Rules", []):
        rate = rule["Statement"].get("RateBasedStatement")
        if not rate or rate.get("AggregateKeyType") != "IP" or "Block" not in rule.get("Action", {}):
            problem(f"waf.yaml: {rule['Name']} is not a per-IP rate-based block")
            continue
        scope = rate.get("ScopeDownStatement", {})
        statements = scope.get("AndStatement", {}).get("Statements", [scope])
        paths = [
            st["ByteMatchStatement"]["SearchString"]
            for st in statements
            if "UriPath" in st.get("ByteMatchStatement", {}).get("FieldToMatch", {})
        ]
        default = t["Parameters"][rate["Limit"]["Ref"]]["Default"] if isinstance(rate["Limit"], dict) else rate["Limit"]
        for path_ in paths:
            limits[path_] = default
    wanted = ("/api/v1/accounts", "/api/v1/auth/", "/api/")
    for path_ in wanted:
        if path_ not in limits:
            problem(f"waf.yaml: no per-IP limit on {path_}")
    if all(p in limits for p in wanted) and not limits[wanted[0]] <= limits[wanted[1]] <= limits[wanted[2]]:
        problem(f"waf.yaml: limits should tighten towards sign-up: {limits}")
    if "WebAclArn" not in t.get("Outputs", {}):
        problem("waf.yaml: output WebAclArn is missing")


def main() -> int:
    template_path = ROOT / (sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    rel = str(template_path.relative_to(ROOT))
    run_tool("cfn-lint", [rel])
    run_tool("sam", ["validate", "--lint", "--region", "us-east-1", "-t", rel])
    run_tool("checkov", ["-f", rel, "--config-file", str(HERE / "checkov.yaml")])
    # The optional stacks (plain CloudFormation, no SAM transform).
    extra_templates = [ROOT / "infra/aws/network.yaml", ROOT / "infra/aws/waf.yaml"]
    for path in extra_templates:
        other = str(path.relative_to(ROOT))
        run_tool("cfn-lint", [other])
        run_tool("checkov", ["-f", other, "--config-file", str(HERE / "checkov.yaml")])

    template = load_yaml(template_path)
    check_parameters(template)
    # As `sam deploy` packages it: local code locations become S3 objects.
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/shared.zip"
    for rid, r in template["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            binary = r["Metadata"]["BuildProperties"]["Binary"]
            r["Properties"]["CodeUri"] = f"s3://artifacts/{binary}.zip"
        if r["Type"] == "AWS::Serverless::LayerVersion":
            r["Properties"]["ContentUri"] = "s3://artifacts/certs.zip"
    base = {
        "DatabaseUrl": "postgres://u:p@db.example.internal:5432/billwire?sslmode=require",
        "JwtSecret": "x" * 32,
        "WebhookSecret": "y" * 16,
    }
    layouts = {
        "no VPC, no connector": {},
        "private subnets with NAT and the connector": {
            "SubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
            "SecurityGroupIds": "sg-0123456789abcdef0",
            "ConnectorImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/billwire-connector:1",
            "AlarmEmail": "ops@example.com",
        },
        # README's fresh-account path: infra/aws/network.yaml's outputs, a custom WebSocket
        # domain in a Route 53 zone, the WAF from infra/aws/waf.yaml, a bumped Revision.
        "network stack's secret, custom domain, WAF": {
            "DatabaseUrl": "",
            "DatabaseUrlSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billwire-net-url-AbCdEf",
            "SubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
            "SecurityGroupIds": "sg-0123456789abcdef0",
            "ConnectorImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/billwire-connector:1",
            "WebSocketDomainName": "ws.example.com",
            "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0b1c2d3e-1111-2222-3333-444455556666",
            "WebSocketHostedZoneId": "Z0123456789ABCDEFGHIJ",
            "WebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/billwire-waf/0b1c2d3e",
            "Revision": "2026-12-01",
            "AlarmEmail": "ops@example.com",
        },
        # The same secret for the functions (say, through RDS Proxy), a direct URL for the
        # connector: the connector gets a secret of its own.
        "secret by ARN, connector's own URL": {
            "DatabaseUrl": "",
            "DatabaseUrlSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:billwire-proxy-url-AbCdEf",
            "ConnectorDatabaseUrl": "postgres://u:p@db.example.internal:5432/billwire?sslmode=require",
            "SubnetIds": "subnet-0123456789abcdef0",
            "SecurityGroupIds": "sg-0123456789abcdef0",
            "ConnectorImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/billwire-connector:1",
        },
    }
    for label, extra in layouts.items():
        given = {**base, **extra}
        try:
            cfn = translate(template, given)
        except Exception as e:  # the translator's own errors name the resource
            problem(f"samtranslator ({label}): {str(e)[:2000]}")
            continue
        values = parameter_values(template, given)
        try:
            resolved = resolve(cfn, values)
        except (KeyError, ValueError) as e:
            problem(f"resolving conditions ({label}): {e}")
            continue
        wiring(template, resolved, label, values)

    check_network(ROOT / "infra/aws/network.yaml")
    check_waf(ROOT / "infra/aws/waf.yaml")

    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print(f" - {p}")
        return 1
    print("\ntemplate checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
