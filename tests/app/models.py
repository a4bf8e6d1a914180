from django.db import models


class Record(models.Model):
    """One row per execution of tests.app.tasks.record."""

    key = models.CharField(max_length=64)
    pid = models.IntegerField()

    class Meta:
        db_table = "app_record"

    def __str__(self):
        return self.key
