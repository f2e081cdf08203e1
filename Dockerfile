FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY router ./router
COPY workers ./workers
COPY config ./config
RUN pip install --no-cache-dir . && useradd --create-home router
USER router
ENV LOG_FORMAT=json
EXPOSE 8000 8100
CMD ["lead-router", "api", "--host", "0.0.0.0"]
