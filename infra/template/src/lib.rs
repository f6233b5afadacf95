//! Nothing to link: the checks are `tests/checks.rs`, which runs `check.py` (cfn-lint,
//! `sam validate --lint`, checkov, and SAM's translator over template.yaml) in a Python venv
//! under `target/tools/template-venv`.
