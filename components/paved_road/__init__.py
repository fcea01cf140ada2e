"""The paved road: everything one declared service gets, in the namespace named after it."""

# What a service with `database:` or `queue:` gets in its pods (README "What each service gets"):
# the credentials Vault's Secrets Operator writes, mounted read-only as files, and where to use
# them as environment variables from a ConfigMap the data layer writes once the servers exist.
# The Secret names are the contract with components/secrets/vault_config.py.
CREDENTIALS_ROOT = "/var/run/secrets/rampart"
DATABASE_CREDENTIALS_DIR = f"{CREDENTIALS_ROOT}/database"
BROKER_CREDENTIALS_DIR = f"{CREDENTIALS_ROOT}/broker"
# A service that opted in to a Kubernetes API token (`kubernetes_api_access: true`) says so on its
# ServiceAccount and its pod template, beside `automountServiceAccountToken: true`: the security pack
# refuses a mounted token in a service namespace without this mark (service-account-token-opt-in).
API_ACCESS_ANNOTATION = "rampart.dev/kubernetes-api-access"


def database_credentials(service: str) -> str:
    return f"{service}-db-credentials"


def broker_credentials(service: str) -> str:
    return f"{service}-broker-credentials"


def connection_config(service: str) -> str:
    """The ConfigMap with the non-secret half: database host, port and name; broker endpoint and vhosts."""
    return f"{service}-connection"
