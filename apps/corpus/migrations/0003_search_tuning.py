"""Storage and planner tuning of the big tables, which Django's field options cannot express.

* Django adds a ``varchar_pattern_ops`` ("_like") index beside every indexed text column, for
  LIKE 'prefix%' queries. Nothing here runs those on sentence or embedding ids, and at 3.1 M
  sentences (6.2 M embedding rows) they cost hundreds of MB and slow every load: drop them.
* ``work_id`` on the embedding rows gets a small statistics target: a filtered search sends
  the ids of up to a few thousand works in ``work_id = ANY(...)``, and the planner compares
  each against the column's most-common-values list — with the default list of 100 that is
  ~10 ms of planning per query; with 10 it is under 1 ms, and the per-work estimate (from the
  number of distinct values) stays as good.
"""

from django.db import migrations

DROP_LIKE_INDEXES = """
DO $$
DECLARE name text;
BEGIN
    FOR name IN
        SELECT indexname FROM pg_indexes
        WHERE tablename IN ('corpus_sentence', 'corpus_sentenceembedding', 'corpus_paragraph')
          AND indexname LIKE '%\\_like'
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', name);
    END LOOP;
END $$;
"""
WORK_ID_COLUMN = "ALTER TABLE corpus_sentenceembedding ALTER COLUMN work_id"


class Migration(migrations.Migration):
    dependencies = [("corpus", "0002_corpus")]
    operations = [
        migrations.RunSQL(DROP_LIKE_INDEXES, reverse_sql=migrations.RunSQL.noop),
        migrations.RunSQL(
            f"{WORK_ID_COLUMN} SET STATISTICS 10",
            reverse_sql=f"{WORK_ID_COLUMN} SET STATISTICS -1",
        ),
    ]
