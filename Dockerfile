# One image for the four services; compose picks the module to run.
FROM python:3.11-slim
ENV UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 PYTHONUNBUFFERED=1
RUN pip install --no-cache-dir "uv==0.13.9"
WORKDIR /app
COPY . .
RUN uv sync --frozen --all-packages --no-dev && rm -rf /root/.cache
ENV PATH="/app/.venv/bin:$PATH"
USER nobody
