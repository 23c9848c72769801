# Placeholder filled by its owner; kept empty until then so migration numbers do not collide.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("mdefleet", "0003_service_accounts")]

    operations = []
