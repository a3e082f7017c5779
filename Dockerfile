# The image of every Podium service: `podium dispatcher`, `podium policy`, `podium ledger`,
# `podium actor <agent>`, `podium scheduler` (see compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY podium ./podium
COPY topics ./topics
COPY manifests ./manifests
COPY actors ./actors
COPY policy_service ./policy_service
COPY ledger ./ledger
COPY scheduler ./scheduler
RUN pip install . && useradd --system --uid 10001 podium

USER podium
ENTRYPOINT ["podium"]
CMD ["--help"]
