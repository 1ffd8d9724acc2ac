#!/usr/bin/env python
"""Django's command-line utility, run with the embedded services of this checkout."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")
    from django.core.management import execute_from_command_line

    from artefact_site.embedded import EmbeddedServices, ServiceError

    try:
        services = EmbeddedServices()
        with services.leased():
            execute_from_command_line(sys.argv)
    except ServiceError as error:
        sys.exit(f"Could not start the embedded services: {error}")


if __name__ == "__main__":
    main()
