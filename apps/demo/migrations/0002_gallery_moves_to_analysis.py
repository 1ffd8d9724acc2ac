from django.db import migrations


class Migration(migrations.Migration):
    """The example gallery is the analysis app's `ExampleImage` now (its migration 0006 copies
    the rows); the pictures' files stay where they are."""

    dependencies = [
        ("demo", "0001_initial"),
        ("analysis", "0006_example_gallery"),
    ]

    operations = [migrations.DeleteModel(name="GalleryImage")]
