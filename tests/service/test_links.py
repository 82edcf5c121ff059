"""What a sweep's detail tells clients about MLflow: the server's address, never a local path or
credentials."""

from __future__ import annotations

from service.links import links, public_tracking_uri
from service.settings import ServiceSettings


def test_a_local_store_is_not_exposed(tmp_path):
    settings = ServiceSettings(home=tmp_path)
    assert settings.tracking_uri.startswith("sqlite:")
    assert public_tracking_uri(settings) is None
    assert links("s-1", settings, "7", "r").mlflow_experiment is None


def test_a_tracking_server_is_given_without_credentials(tmp_path):
    settings = ServiceSettings(home=tmp_path,
                               mlflow_tracking_uri="https://alice:s3cret@mlflow.example:5000/base/")
    assert public_tracking_uri(settings) == "https://mlflow.example:5000/base"
    page = links("s-1", settings, "7", "abc").mlflow_run
    assert page.startswith("https://mlflow.example:5000/base/") and "s3cret" not in page
