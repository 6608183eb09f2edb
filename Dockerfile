# The redes image: the project and the servers it pins (Prefect, MLflow, optuna-dashboard),
# used by every service of docker-compose.yml except PostgreSQL.
#   docker compose build            (or: docker build -t redes:local .)
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DO_NOT_TRACK=true \
    MLFLOW_DISABLE_TELEMETRY=true \
    PREFECT_SERVER_ANALYTICS_ENABLED=false \
    OMP_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1

RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin redes \
 && mkdir -p /opt/redes /var/lib/redes/data /var/lib/mlflow/artifacts \
 && chown redes:redes /opt/redes /var/lib/redes /var/lib/redes/data /var/lib/mlflow /var/lib/mlflow/artifacts

WORKDIR /opt/redes

# Dependencies first, from pyproject.toml alone, so that a change of code does not reinstall them.
# mlflow[auth] adds what `mlflow server --app-name basic-auth` needs (MLFLOW_BASIC_AUTH=true).
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt "mlflow[auth]>=3.17,<3.18" \
 && rm /tmp/requirements.txt

# The code. Workers run deployments from this folder (prefect.yaml's pull step), so it stays here.
COPY core core
COPY mnist mnist
COPY runtime runtime
COPY tracking tracking
COPY flows flows
COPY cli cli
COPY docker docker
COPY prefect.yaml ./
RUN pip install --no-deps . && chmod 0755 docker/*.sh

USER redes
CMD ["redes", "--help"]
