#!/usr/bin/env python3
"""Checks template.yaml: cfn-lint, `sam validate --lint`, checkov, and the wiring of the
template as SAM's own translator expands it (offline: the managed-policy map bundled with
samtranslator stands in for IAM's ListPolicies).

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


def wiring(template: dict, cfn: dict, label: str) -> None:
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
                    if resource == "*" or not (refs_in(resource) & secret_ids):
                        problem(f"{rid}: secretsmanager on {json.dumps(resource)}, not one of this stack's secrets")
    exec_role = res.get("ConnectorExecutionRole")
    if exec_role:
        readable = set().union(*(refs_in(st.get("Resource")) for st in policy_statements(exec_role)))
        if readable & secret_ids != {"ConnectorDatabaseUrlSecret"}:
            problem(f"the connector's execution role reads {readable & secret_ids}, not only its database URL")

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
    print(f"   {len(routed)} HTTP routes, {len(ws_functions)} WebSocket functions, {len(functions)} functions checked")


def main() -> int:
    template_path = ROOT / (sys.argv[1] if len(sys.argv) > 1 else "template.yaml")
    rel = str(template_path.relative_to(ROOT))
    run_tool("cfn-lint", [rel])
    run_tool("sam", ["validate", "--lint", "--region", "us-east-1", "-t", rel])
    run_tool("checkov", ["-f", rel, "--config-file", str(HERE / "checkov.yaml")])

    template = load_yaml(template_path)
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
    }
    for label, extra in layouts.items():
        try:
            cfn = translate(template, {**base, **extra})
        except Exception as e:  # the translator's own errors name the resource
            problem(f"samtranslator ({label}): {str(e)[:2000]}")
            continue
        wiring(template, cfn, label)

    if problems:
        print(f"\n{len(problems)} problem(s):")
        for p in problems:
            print(f" - {p}")
        return 1
    print("\ntemplate checks: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
