FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY mappings ./mappings
COPY fixtures ./fixtures
RUN pip install --no-cache-dir .
RUN useradd --create-home kapgw
USER kapgw
EXPOSE 8000
CMD ["kap-gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
