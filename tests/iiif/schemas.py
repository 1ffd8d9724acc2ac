"""JSON Schemas (draft 2020-12) of what the IIIF Presentation API 3.0 and the W3C Web
Annotation Data Model require of the documents ArteFact serves, written from the two
specifications' MUST statements for the classes those documents use (Manifest, Canvas,
AnnotationPage, Annotation, TextualBody, SpecificResource, FragmentSelector,
AnnotationCollection). Part of this project's tests, under its licence."""

from __future__ import annotations

HTTP_URI = {"type": "string", "pattern": "^https?://[^\\s]+$"}
LANGUAGE_MAP = {
    "type": "object",
    "minProperties": 1,
    "patternProperties": {
        "^(none|[a-zA-Z]{2,3}(-[a-zA-Z0-9]+)*)$": {"type": "array", "items": {"type": "string"}}
    },
    "additionalProperties": False,
}
DIMENSION = {"type": "integer", "exclusiveMinimum": 0}

FRAGMENT_SELECTOR = {
    "type": "object",
    "required": ["type", "value"],
    "properties": {
        "type": {"const": "FragmentSelector"},
        "conformsTo": {"const": "http://www.w3.org/TR/media-frags/"},
        "value": {"type": "string", "pattern": "^xywh=(pixel:)?\\d+,\\d+,\\d+,\\d+$"},
    },
}
TEXTUAL_BODY = {
    "type": "object",
    "required": ["type", "value"],
    "properties": {
        "type": {"const": "TextualBody"},
        "value": {"type": "string", "minLength": 1},
        "format": {"enum": ["text/plain", "text/html"]},
        "language": {"type": "string"},
    },
}


def _specific_resource(source_type: str) -> dict:
    return {
        "type": "object",
        "required": ["type", "source", "selector"],
        "properties": {
            "type": {"const": "SpecificResource"},
            "source": {
                "type": "object",
                "required": ["id", "type"],
                "properties": {"id": HTTP_URI, "type": {"const": source_type}},
            },
            "selector": FRAGMENT_SELECTOR,
        },
    }


def _commenting(source_type: str) -> dict:
    return {
        "type": "object",
        "required": ["id", "type", "motivation", "body", "target"],
        "properties": {
            "id": HTTP_URI,
            "type": {"const": "Annotation"},
            "motivation": {"const": "commenting"},
            "body": TEXTUAL_BODY,
            "target": _specific_resource(source_type),
        },
    }


PAINTING = {
    "type": "object",
    "required": ["id", "type", "motivation", "body", "target"],
    "properties": {
        "id": HTTP_URI,
        "type": {"const": "Annotation"},
        "motivation": {"const": "painting"},
        "body": {
            "type": "object",
            "required": ["id", "type", "format", "width", "height"],
            "properties": {
                "id": HTTP_URI,
                "type": {"const": "Image"},
                "format": {"type": "string", "pattern": "^image/"},
                "width": DIMENSION,
                "height": DIMENSION,
            },
        },
        "target": HTTP_URI,
    },
}


def _page(annotation: dict) -> dict:
    return {
        "type": "object",
        "required": ["id", "type", "items"],
        "properties": {
            "id": HTTP_URI,
            "type": {"const": "AnnotationPage"},
            "label": LANGUAGE_MAP,
            "items": {"type": "array", "items": annotation},
        },
    }


CANVAS = {
    "type": "object",
    "required": ["id", "type", "width", "height", "items"],
    "properties": {
        "id": HTTP_URI,
        "type": {"const": "Canvas"},
        "label": LANGUAGE_MAP,
        "width": DIMENSION,
        "height": DIMENSION,
        "items": {"type": "array", "minItems": 1, "items": _page(PAINTING)},
        "annotations": {"type": "array", "items": _page(_commenting("Canvas"))},
    },
}

MANIFEST = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["@context", "id", "type", "label", "items"],
    "properties": {
        "@context": {"const": "http://iiif.io/api/presentation/3/context.json"},
        "id": HTTP_URI,
        "type": {"const": "Manifest"},
        "label": LANGUAGE_MAP,
        "summary": LANGUAGE_MAP,
        "metadata": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["label", "value"],
                "properties": {"label": LANGUAGE_MAP, "value": LANGUAGE_MAP},
                "additionalProperties": False,
            },
        },
        "requiredStatement": {
            "type": "object",
            "required": ["label", "value"],
            "properties": {"label": LANGUAGE_MAP, "value": LANGUAGE_MAP},
            "additionalProperties": False,
        },
        "rights": HTTP_URI,
        "seeAlso": {
            "type": "array",
            "items": {"type": "object", "required": ["id", "type"], "properties": {"id": HTTP_URI}},
        },
        "items": {"type": "array", "minItems": 1, "items": CANVAS},
    },
    "additionalProperties": False,
}

ANNOTATION_COLLECTION = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["@context", "id", "type", "total", "first"],
    "properties": {
        "@context": {"const": "http://www.w3.org/ns/anno.jsonld"},
        "id": HTTP_URI,
        "type": {"const": "AnnotationCollection"},
        "label": {"type": "string"},
        "total": {"type": "integer", "minimum": 0},
        "first": {
            "type": "object",
            "required": ["id", "type", "items"],
            "properties": {
                "type": {"const": "AnnotationPage"},
                "startIndex": {"type": "integer", "minimum": 0},
                "items": {"type": "array", "items": _commenting("Image")},
            },
        },
    },
}
