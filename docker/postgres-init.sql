-- The MLflow backend store is the image's default database (POSTGRES_DB=mlflow); the service's
-- sweep records get their own database.
CREATE DATABASE dlab;
