"""An amendment waiting for its signatures lives beside the signed version it replaces (H3)."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('contracts', '0002_charter'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='subscription',
            name='subscription_one_live_per_member',
        ),
        migrations.AddConstraint(
            model_name='subscription',
            constraint=models.UniqueConstraint(condition=models.Q(('previous__isnull', True), ('status__in', ['waiting', 'pending', 'member_signed', 'signed'])), fields=('contract', 'member'), name='subscription_one_live_per_member'),
        ),
    ]
