"""DRF authtoken's tokens become hashed knox tokens with the same key; the plaintext goes.

`rest_framework.authtoken` stored each key in clear (`authtoken_token.key`). Every such key is
copied into an ApiToken holding only its digest, so scripts keep sending the same
`Authorization: Token <key>`, and the old table is dropped: a dump then holds no usable token.
The app is no longer installed, so its table is read with plain SQL where it exists (a
database made before this change); on a fresh database there is nothing to do.
"""

from django.db import migrations
from knox.crypto import hash_token
from knox.settings import CONSTANTS

LEGACY_TABLE = "authtoken_token"


def hash_legacy_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {quote('key')}, {quote('user_id')}, {quote('created')} "
            f"FROM {quote(LEGACY_TABLE)}"
        )
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        token = ApiToken.objects.create(
            user_id=user_id,
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            digest=hash_token(key),
            name="token from before hashing",
            expiry=None,  # they never expired; revoke them on the account page or in the admin
        )
        # auto_now_add set `created` to now: keep the day it was really made.
        ApiToken.objects.filter(pk=token.pk).update(created=created)
    schema_editor.execute(f"DROP TABLE {quote(LEGACY_TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_api_token")]

    # Not reversible in substance: the plaintext keys are gone, which is the point.
    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop)]
