"""The implant's description field list, in a module with no Django import so that the seed
catalogue (read by benches without Django set up) takes it from here too."""

# What describes an implant beyond its name and maker, in the order people read it: the catalogue
# API (`implants.api`, `implants.api_legacy`), the catalogue import/export columns
# (`implants.catalog_io`) and the admin show these fields, from this one list.
IMPLANT_DESCRIPTION_FIELDS: list[str] = [
    "connection",
    "body_shape",
    "level",
    "thread_shape",
    "apex",
    "collar",
    "platform_switching",
    "diameters_mm",
    "lengths_mm",
    "screwdriver",
    "notes",
    "is_active",
]
