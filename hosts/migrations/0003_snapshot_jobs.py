# Placeholder filled by its owner; kept empty until then so migration numbers do not collide.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("hosts", "0002_job_kind")]

    operations = []
