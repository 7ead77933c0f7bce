# The hash of the bytes as sent (issue 20, follow-up): identical sendings are decoded once.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('submissions', '0007_match_probability_band'),
    ]

    operations = [
        migrations.AddField(
            model_name='submission',
            name='original_hash',
            field=models.CharField(blank=True, db_index=True, editable=False, max_length=64, verbose_name='hash do arquivo original'),
        ),
    ]
