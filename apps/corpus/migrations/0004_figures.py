"""Figure search: captions and citing paragraphs of the figure images, their thumbnails, and
one embedding per figure per model (its HNSW index is built by `vectors.ensure_vector_index`
once vectors exist, as for sentences). Figures imported before this get their caption and
citation from their work's stored Markdown here; thumbnails and vectors come from
``manage.py embed_corpus --figures``."""

import django.db.models.deletion
import pgvector.django.halfvec
from django.db import migrations, models


def describe_figures(apps, schema_editor):
    from apps.corpus.importers.figures import figure_texts

    WorkImage = apps.get_model("corpus", "WorkImage")
    Work = apps.get_model("corpus", "Work")
    work_ids = WorkImage.objects.values_list("work_id", flat=True).distinct()
    for work in Work.objects.filter(id__in=work_ids).only("id", "markdown").iterator():
        described = figure_texts(work.markdown or "")
        for image in WorkImage.objects.filter(work_id=work.id):
            text = described.get(image.name)
            if text is not None:
                image.caption, image.citation = text.caption, text.citation
                image.save(update_fields=["caption", "citation"])


class Migration(migrations.Migration):
    dependencies = [
        ("corpus", "0003_search_tuning"),
    ]

    operations = [
        migrations.AddField(
            model_name="workimage",
            name="caption",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The line or paragraph after the image link, if any.",
            ),
        ),
        migrations.AddField(
            model_name="workimage",
            name="citation",
            field=models.TextField(
                blank=True,
                default="",
                help_text="The paragraph citing the figure (see apps.corpus.importers.figures).",
            ),
        ),
        migrations.AddField(
            model_name="workimage",
            name="thumbnail",
            field=models.FileField(
                blank=True,
                help_text="A metadata-free JPEG copy, written when the figure is embedded.",
                max_length=500,
                upload_to="corpus/thumbnails",
            ),
        ),
        migrations.CreateModel(
            name="FigureEmbedding",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "model",
                        "figure",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("model", models.CharField(max_length=32)),
                ("searchable", models.BooleanField(default=True)),
                ("embedding", pgvector.django.halfvec.HalfVectorField()),
                (
                    "figure",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="embeddings",
                        to="corpus.workimage",
                    ),
                ),
                (
                    "work",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="corpus.work",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["work", "model"], name="figure_embedding_work_model")
                ],
            },
        ),
        migrations.RunPython(describe_figures, migrations.RunPython.noop),
    ]
