"""Carry the keys of ``rest_framework.authtoken`` over to ``ApiToken``, hashed.

Until this migration each user had at most one unnamed token, stored in the clear in the
``authtoken_token`` table. Each becomes a named ``ApiToken`` with the same key (clients keep
working) and the clear-text rows are deleted. The table itself stays, empty, so that the
migration state of ``authtoken`` still matches the database if the app is ever installed again.
"""

import hashlib

from django.db import migrations

OLD_TABLE = "authtoken_token"


def hash_authtoken_keys(apps, schema_editor):
    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return
    api_token = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {OLD_TABLE}")
        rows = cursor.fetchall()
        api_token.objects.bulk_create(
            api_token(
                user_id=user_id,
                name="API token (from before named tokens)",
                prefix=key[:9],
                digest=hashlib.sha256(key.encode()).hexdigest(),
                created=created,
            )
            for key, user_id, created in rows
        )
        cursor.execute(f"DELETE FROM {OLD_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_api_token")]

    operations = [migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop)]
