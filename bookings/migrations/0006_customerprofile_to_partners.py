# The customer's profile moves to partners (the accounts' home); its table stays where it is.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("bookings", "0005_history_lists")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="CustomerProfile")]),
    ]
