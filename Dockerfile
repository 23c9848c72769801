# mdefleet image: the same image runs web (gunicorn), worker and beat (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 MDEFLEET_VAR_DIR=/var/lib/mdefleet
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /var/lib/mdefleet mdefleet
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
RUN SECRET_KEY=build MDEFLEET_FERNET_KEYS=$(python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())") \
    python manage.py collectstatic --noinput -v 0
USER mdefleet
EXPOSE 8000
CMD ["gunicorn", "mdefleet.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
