#!/usr/bin/env python3
"""Stands template.yaml up the way CloudFormation would, as far as the code can tell.

    python stack.py REQUEST.json > PLAN.json          (run by infra/rehearsal/src/stack.rs)

REQUEST: {"template": path, "parameters": {name: value}, "moto": "http://127.0.0.1:PORT",
          "stack_name": "...", "api_id": "..."}

1. template.yaml is expanded by SAM's own translator (infra/template/check.py's `translate`),
   with the parameters given and every other parameter at its default: Globals merged,
   roles and policies generated, exactly what `sam deploy` hands CloudFormation.
2. Conditions and intrinsic functions are resolved as CloudFormation resolves them.
3. In moto (an AWS emulator with IAM enforced): the secrets, the managed policies and the
   roles the template declares, each with its policies as written. The first three requests
   make an administrator (moto_server runs with INITIAL_NO_AUTH_ACTION_COUNT=3); all others
   are signed, and moto judges each by the caller's policies.
4. Every function gets its role's credentials (sts:AssumeRole), as Lambda does; the
   connector's task gets its task role's credentials, and its `Secrets` are read with its
   EXECUTION role's credentials, as ECS does before the container starts: a secret that
   role may not read fails here, as the task would fail to start.

Prints the plan: per function its binary, environment, memory, timeout and credentials; the
connector's container definition with its secrets' values; the migrations custom resource's
properties. Exits non-zero, saying why, where AWS would fail too.
"""

import copy
import importlib.util
import json
import re
from secrets import choice as random_choice
import string
import sys
from pathlib import Path

import boto3
from botocore.config import Config

HERE = Path(__file__).resolve().parent
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's account
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


def load_check_module():
    # No __pycache__ in the checkout: local mode restarts every function on any change there.
    sys.dont_write_bytecode = True
    spec = importlib.util.spec_from_file_location("template_check", HERE.parent / "template" / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class NoValue:
    pass


NO_VALUE = NoValue()


class Stack:
    def __init__(self, cfn: dict, params: dict, stack_name: str, api_id: str):
        self.cfn = cfn
        self.resources = cfn["Resources"]
        self.stack_name = stack_name
        self.api_id = api_id
        self.params = {}
        for name, spec in cfn.get("Parameters", {}).items():
            if name in params:
                value = params[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise SystemExit(f"parameter {name} has no default and the rehearsal gave none")
            if spec.get("Type") == "CommaDelimitedList":
                value = [v.strip() for v in str(value).split(",")]
            elif not isinstance(value, str):
                value = str(value)
            self.params[name] = value
        unknown = set(params) - set(self.params)
        if unknown:
            raise SystemExit(f"the template has no parameters {sorted(unknown)}")
        self.physical: dict[str, str] = {}
        self.conditions: dict[str, bool] = {}
        for name in cfn.get("Conditions", {}):
            self.condition(name)

    # ---- conditions and intrinsic functions, as CloudFormation evaluates them

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.cfn["Conditions"][name]))
        return self.conditions[name]

    def pseudo(self, name: str):
        return {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT}:stack/{self.stack_name}/0f4a6e0c-rehearsal",
            "AWS::NoValue": NO_VALUE,
        }.get(name)

    def ref(self, name: str):
        if name.startswith("AWS::"):
            value = self.pseudo(name)
            if value is None:
                raise SystemExit(f"unknown pseudo parameter {name}")
            return value
        if name in self.params:
            return self.params[name]
        if name in self.physical:
            return self.physical[name]
        resource = self.resources.get(name)
        if resource is None:
            raise SystemExit(f"Ref to {name}, which the template does not declare")
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::ApiGatewayV2::Api":
            return self.api_id if props.get("ProtocolType") == "WEBSOCKET" else f"{self.api_id}h"
        if kind == "AWS::ApiGatewayV2::Stage":
            return self.resolve(props["StageName"])
        if kind == "AWS::Lambda::Function":
            return self.function_name(name)
        if kind == "AWS::Lambda::Version":
            fn = self.resolve(props["FunctionName"])
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{fn}:1"
        if kind == "AWS::Lambda::LayerVersion":
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:layer:{self.stack_name}-{name}:1"
        if kind == "AWS::IAM::Role":
            return self.role_name(name)
        return f"{self.stack_name}-{name}"

    def function_name(self, logical: str) -> str:
        given = self.resources[logical].get("Properties", {}).get("FunctionName")
        return self.resolve(given) if given else f"{self.stack_name}-{logical}"

    def role_name(self, logical: str) -> str:
        return f"{self.stack_name}-{logical}"[:64]

    def get_att(self, logical: str, attr: str):
        resource = self.resources.get(logical)
        if resource is None:
            raise SystemExit(f"GetAtt of {logical}, which the template does not declare")
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function" and attr == "Arn":
            return f"arn:{PARTITION}:lambda:{REGION}:{ACCOUNT}:function:{self.function_name(logical)}"
        if kind == "AWS::IAM::Role" and attr == "Arn":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.role_name(logical)}"
        if kind == "AWS::Logs::LogGroup" and attr == "Arn":
            return f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT}:log-group:{self.ref(logical)}:*"
        return f"{logical}.{attr}"

    def resolve(self, value):
        if isinstance(value, list):
            out = [self.resolve(v) for v in value]
            return [v for v in out if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key in ("Condition", "Fn::Condition"):  # check.py reads !Condition as Fn::Condition
                return self.condition(arg)
            if key == "Fn::If":
                name, yes, no = arg
                return self.resolve(yes if self.condition(name) else no)
            if key == "Fn::Equals":
                a, b = (self.resolve(v) for v in arg)
                return a == b
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(v) for v in arg)
            if key == "Fn::Or":
                return any(self.resolve(v) for v in arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(v) for v in self.resolve(items))
            if key == "Fn::Select":
                index, items = arg
                return self.resolve(items)[int(self.resolve(index))]
            if key == "Fn::Split":
                sep, text = arg
                return str(self.resolve(text)).split(sep)
            if key == "Fn::GetAtt":
                logical, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical, attr)
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else arg
                variables = {k: self.resolve(v) for k, v in variables.items()}
                return self.sub(text, variables)
            if key.startswith("Fn::"):
                raise SystemExit(f"the rehearsal cannot resolve {key} yet")
        out = {}
        for k, v in value.items():
            r = self.resolve(v)
            if r is not NO_VALUE:
                out[k] = r
        return out

    def sub(self, text: str, variables: dict) -> str:
        def one(match):
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical, attr = name.split(".", 1)
                return str(self.get_att(logical, attr))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def active(self):
        """The resources that exist with these parameters (their Condition holds)."""
        for logical, resource in self.resources.items():
            cond = resource.get("Condition")
            if cond is None or self.condition(cond):
                yield logical, resource


def client(service: str, moto: str, creds: dict):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=moto,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
        config=Config(retries={"max_attempts": 1}),
    )


def administrator(moto: str) -> dict:
    """The three requests moto lets through unauthenticated: a user allowed everything."""
    anonymous = {"AccessKeyId": "AKIAREHEARSALBOOT000", "SecretAccessKey": "boot"}
    iam = client("iam", moto, anonymous)
    iam.create_user(UserName="rehearsal-admin")
    iam.put_user_policy(
        UserName="rehearsal-admin",
        PolicyName="everything",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName="rehearsal-admin")["AccessKey"]
    return {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}


def as_document(doc) -> str:
    """A policy as IAM takes it. SAM writes its statement policies without a Version, which
    IAM accepts (as 2008-10-17, the same for policies without variables) and moto refuses."""
    if isinstance(doc, str):
        doc = json.loads(doc)
    if "Version" not in doc:
        doc = {"Version": "2012-10-17", **doc}
    return json.dumps(doc)


def main() -> None:
    request = json.loads(Path(sys.argv[1]).read_text())
    check = load_check_module()
    template = check.load_yaml(Path(request["template"]))
    # As `sam deploy` packages it: local code locations become S3 objects (the rehearsal
    # runs the binaries built here; where the code came from changes nothing else).
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/shared.zip"
    layers = {}
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            binary = resource["Metadata"]["BuildProperties"]["Binary"]
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{binary}.zip"
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            layers[logical] = resource["Properties"]["ContentUri"]
            resource["Properties"]["ContentUri"] = f"s3://artifacts/{logical}.zip"
    sam_params = {k: v for k, v in request["parameters"].items()}
    cfn = check.translate(template, sam_params)
    stack = Stack(cfn, request["parameters"], request["stack_name"], request["api_id"])
    moto = request["moto"]
    admin = administrator(moto)
    iam = client("iam", moto, admin)
    sm = client("secretsmanager", moto, admin)
    sts = client("sts", moto, admin)
    active = dict(stack.active())

    # Secrets first (their ARNs are what functions and policies name), then managed
    # policies, then roles: the order CloudFormation's references impose.
    for logical, resource in active.items():
        if resource["Type"] == "AWS::SecretsManager::Secret":
            props = stack.resolve(resource.get("Properties", {}))
            value = props.get("SecretString")
            if value is None:  # GenerateSecretString: Secrets Manager makes one up
                spec = props.get("GenerateSecretString", {})
                alphabet = string.ascii_letters + string.digits
                if not spec.get("ExcludePunctuation"):
                    alphabet += "!#$%&()*+,-.:;<=>?@[]^_{|}~"
                value = "".join(random_choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
            made = sm.create_secret(Name=f"{stack.stack_name}-{logical}", SecretString=value)
            stack.physical[logical] = made["ARN"]
    for logical, resource in active.items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            props = stack.resolve(resource["Properties"])
            made = iam.create_policy(
                PolicyName=f"{stack.stack_name}-{logical}", PolicyDocument=as_document(props["PolicyDocument"])
            )
            stack.physical[logical] = made["Policy"]["Arn"]
    roles = {}
    for logical, resource in active.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        props = stack.resolve(resource["Properties"])
        name = stack.role_name(logical)
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=as_document(props["AssumeRolePolicyDocument"]))
        for policy in props.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=as_document(policy["PolicyDocument"])
            )
        for arn in props.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=arn)
        roles[logical] = f"arn:{PARTITION}:iam::{ACCOUNT}:role/{name}"

    admin_arn = iam.get_user(UserName="rehearsal-admin")["User"]["Arn"]

    def credentials_of(role_arn: str, session: str, service: str) -> dict:
        """The role's credentials, as `service` gets them. The role must trust the service
        (AWS refuses to create a function or start a task otherwise); the administrator then
        stands in for the service: the trust policy, checked, is replaced by one that trusts
        the administrator (moto cannot judge a statement whose principal is a service)."""
        name = role_arn.split("/")[-1]
        trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        trusted = [
            st for st in trust.get("Statement", [])
            if st.get("Effect") == "Allow"
            and "sts:AssumeRole" in (st.get("Action") if isinstance(st.get("Action"), list) else [st.get("Action")])
            and service in (lambda p: p if isinstance(p, list) else [p])(st.get("Principal", {}).get("Service", []))
        ]
        if not trusted:
            raise SystemExit(f"role {name} does not trust {service}, which must assume it")
        stand_in = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}],
        }
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(stand_in))
        c = sts.assume_role(RoleArn=role_arn, RoleSessionName=session[:64])["Credentials"]
        return {
            "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"],
        }

    sam_resources = template["Resources"]
    functions = {}
    for logical, resource in active.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = stack.resolve(resource["Properties"])
        binary = sam_resources.get(logical, {}).get("Metadata", {}).get("BuildProperties", {}).get("Binary")
        if binary is None:
            raise SystemExit(f"{logical} names no binary (Metadata.BuildProperties.Binary)")
        functions[logical] = {
            "binary": binary,
            "name": stack.function_name(logical),
            "environment": props.get("Environment", {}).get("Variables", {}),
            "memory": int(props.get("MemorySize", 128)),
            "timeout": int(props.get("Timeout", 3)),
            "handler": props.get("Handler"),
            "runtime": props.get("Runtime"),
            "architectures": props.get("Architectures", ["x86_64"]),
            # Each layer as the directory its ContentUri names (SAM layer refs resolve to
            # a version ARN naming the layer's logical id).
            "layers": [
                dir_of_layer for arn in props.get("Layers", [])
                for logical_layer, dir_of_layer in layers.items()
                if arn.split(":")[6].startswith(f"{stack.stack_name}-{logical_layer}")
            ],
            "credentials": credentials_of(props["Role"], stack.function_name(logical), "lambda.amazonaws.com"),
        }

    connector = None
    for logical, resource in active.items():
        if resource["Type"] != "AWS::ECS::TaskDefinition":
            continue
        props = stack.resolve(resource["Properties"])
        execution = credentials_of(props["ExecutionRoleArn"], "ecs-execution", "ecs-tasks.amazonaws.com")
        task = credentials_of(props["TaskRoleArn"], "ecs-task", "ecs-tasks.amazonaws.com")
        as_execution_role = client(
            "secretsmanager",
            moto,
            {
                "AccessKeyId": execution["AWS_ACCESS_KEY_ID"],
                "SecretAccessKey": execution["AWS_SECRET_ACCESS_KEY"],
                "SessionToken": execution["AWS_SESSION_TOKEN"],
            },
        )
        containers = []
        for container in props["ContainerDefinitions"]:
            secrets = []
            for secret in container.get("Secrets", []):
                try:
                    value = as_execution_role.get_secret_value(SecretId=secret["ValueFrom"])["SecretString"]
                except Exception as e:  # ECS: the task stops with ResourceInitializationError
                    raise SystemExit(
                        f"ECS could not start {logical}: its execution role cannot read "
                        f"{secret['ValueFrom']} for {secret['Name']}: {e}"
                    )
                secrets.append([secret["Name"], value])
            containers.append({"definition": container, "secrets": secrets})
        connector = {
            "logical_id": logical,
            "volumes": props.get("Volumes", []),
            "cpu": props.get("Cpu"),
            "memory": props.get("Memory"),
            "containers": containers,
            "task_credentials": task,
        }

    migrations = None
    for logical, resource in active.items():
        if resource["Type"].startswith("Custom::") or resource["Type"] == "AWS::CloudFormation::CustomResource":
            props = stack.resolve(resource["Properties"])
            token = props["ServiceToken"]
            target = next(
                (f for f, spec in functions.items() if token.split(":")[6] == spec["name"]), None
            )
            migrations = {
                "logical_id": logical,
                "type": resource["Type"],
                "properties": props,
                "function": target,
                "service_timeout": props.get("ServiceTimeout"),
            }

    # What CloudFront adds to the requests it passes to the HTTP API (the /api/* behaviour's
    # origin), dynamic references resolved as CloudFormation resolves them at deploy.
    def dynamic(value: str) -> str:
        def one(match):
            secret_id, _, rest = match.group(1).partition(":SecretString")
            return sm.get_secret_value(SecretId=secret_id)["SecretString"]

        return re.sub(r"\{\{resolve:secretsmanager:(.+?)\}\}", one, value)

    api_headers = {}
    for logical, resource in active.items():
        if resource["Type"] != "AWS::CloudFront::Distribution":
            continue
        config = stack.resolve(resource["Properties"])["DistributionConfig"]
        api_origin = next(
            (b["TargetOriginId"] for b in config.get("CacheBehaviors", []) if b.get("PathPattern") == "/api/*"), None
        )
        for origin in config.get("Origins", []):
            if origin.get("Id") == api_origin:
                for header in origin.get("OriginCustomHeaders", []):
                    api_headers[header["HeaderName"]] = dynamic(header["HeaderValue"])

    json.dump(
        {
            "stack_id": stack.pseudo("AWS::StackId"),
            "cloudfront_api_headers": api_headers,
            "region": REGION,
            "functions": functions,
            "connector": connector,
            "migrations": migrations,
            "secrets": {k: v for k, v in stack.physical.items() if k.endswith("Secret")},
        },
        sys.stdout,
        indent=1,
    )


if __name__ == "__main__":
    main()
