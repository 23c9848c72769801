# Placeholder filled by its owner; kept empty until then so migration numbers do not collide.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("deployments", "0003_schedules")]

    operations = []
