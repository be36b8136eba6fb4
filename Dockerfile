# Posterr app image: gunicorn serving the Bottle app; dbmate inside for the migrate step.
FROM python:3.11-slim AS build
WORKDIR /app
COPY requirements.txt .
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir -r requirements.txt

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home /app posterr
WORKDIR /app
COPY --from=build /venv /venv
COPY posterr/ posterr/
COPY db/ db/
ENV PATH=/venv/bin:$PATH PORT=5000 PYTHONUNBUFFERED=1
USER posterr
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD python -c "import urllib.request,os; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/healthz', timeout=2)"
CMD ["gunicorn", "-c", "posterr/gunicorn_conf.py"]
