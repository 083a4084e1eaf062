# One image for web, workers and beat; docker-compose.yml picks the command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HF_HUB_DISABLE_TELEMETRY=1 VAR_DIR=/app/var STATIC_ROOT=/app/staticfiles
WORKDIR /app

# The CPU build of torch unless told otherwise (a GPU trainer image passes its CUDA index).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --no-cache-dir torch==2.13.0 --index-url "$TORCH_INDEX_URL"

# Dependencies only (cached while pyproject.toml is unchanged); the code runs from /app.
COPY pyproject.toml ./
# The `serving` extra too: the playground's client (openai) and the model-server's server.
RUN python -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; print(*p['dependencies'], *p['optional-dependencies']['serving'], sep='\n')" > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt

COPY . .
RUN SECRET_KEY=build-only python manage.py collectstatic --noinput \
    && useradd --create-home app && mkdir -p /app/var && chown -R app /app/var
USER app
EXPOSE 8000
CMD ["gunicorn", "feedback_app.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--limit-request-line", "8190"]
