#!/usr/bin/env python3
"""moto's server, with IAM enforced the way AWS enforces it for Secrets Manager.

    python moto_server.py -H 127.0.0.1 -p PORT        (moto_server's own arguments)

moto checks every request against the caller's IAM policies once INITIAL_NO_AUTH_ACTION_COUNT
requests have passed (the rehearsal sets it; infra/rehearsal/stack.py makes the first ones:
an administrator). But it authorizes Secrets Manager calls against the resource "*", which
no ARN-scoped statement matches: every `Resource: <secret ARN>` grant would be refused, and
a rehearsal that refuses the template's correct grants proves nothing. This gives each call
the ARN of the secret it names, as IAM does; everything else is moto as released.
"""

import sys

from moto.secretsmanager.responses import SecretsManagerResponse
from moto.server import main


def _determine_resource(self) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    if secret_id.startswith("arn:"):
        return secret_id
    try:
        return self.backend.describe_secret(secret_id).arn
    except Exception:  # no such secret: IAM still judges the request, by name
        return f"arn:aws:secretsmanager:{self.region}:{self.current_account}:secret:{secret_id}"


SecretsManagerResponse._determine_resource = _determine_resource

if __name__ == "__main__":
    main(sys.argv[1:])
