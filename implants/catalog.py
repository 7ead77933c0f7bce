"""The old system's 32 reference implants: 4 manufacturers x 8 of their real product lines.

Features are those a dentist reads on an X-ray; the silhouettes drawn for the seed images follow
them (see implants.synthetic). Diameters and lengths are the commonly sold ones.
"""

from __future__ import annotations

MANUFACTURERS = [
    {"name": "Nobel Biocare", "country": "Suíça", "website": "https://www.nobelbiocare.com"},
    {"name": "Straumann", "country": "Suíça", "website": "https://www.straumann.com"},
    {"name": "Neodent", "country": "Brasil", "website": "https://www.neodent.com.br"},
    {"name": "Zimmer", "country": "Estados Unidos", "website": "https://www.zimvie.com"},
]

UNIGRIP = "Chave Unigrip (Nobel Biocare)"
SCS = "Chave SCS (Straumann)"
NEO = "Chave hexagonal 1,2 mm Neodent (Neo Torque)"
NEO_EX = "Chave hexagonal 0,9 mm Neodent"
ZIMMER_HEX = "Chave hexagonal 0,050\" (1,25 mm) Zimmer"


def _i(name, connection, body_shape, thread_shape, apex, collar, *, level="bone", ps=False,
       diameters=(3.5, 4.3, 5.0), lengths=(8, 10, 11.5, 13, 15), screwdriver="", pitch=18, depth=8,
       collar_px=20, taper=None):
    return {
        "name": name,
        "features": {
            "connection": connection,
            "body_shape": body_shape,
            "level": level,
            "thread_shape": thread_shape,
            "apex": apex,
            "collar": collar,
            "platform_switching": ps,
            "diameters_mm": list(diameters),
            "lengths_mm": list(lengths),
            "screwdriver": screwdriver,
        },
        # Drawing parameters for the synthetic radiograph.
        "drawing": {
            "taper": taper if taper is not None else (0.68 if body_shape == "tapered" else 1.0),
            "thread_pitch": pitch,
            "thread_depth": depth,
            "thread_shape": thread_shape,
            "apex": apex,
            "collar_height": collar_px,
            "connection": connection,
            "tissue_level": level == "tissue",
        },
    }


CATALOG: dict[str, list[dict]] = {
    "Nobel Biocare": [
        _i("NobelActive", "morse_taper", "tapered", "reverse_buttress", "pointed", "microthread", ps=True,
           screwdriver=UNIGRIP, pitch=22, depth=11, collar_px=12, taper=0.6),
        _i("NobelParallel CC", "morse_taper", "parallel", "v", "flat", "rough", ps=True,
           screwdriver=UNIGRIP, pitch=16, depth=6, collar_px=14),
        _i("NobelReplace CC", "morse_taper", "tapered", "v", "rounded", "machined", ps=True,
           screwdriver=UNIGRIP, pitch=15, depth=5, collar_px=22, taper=0.75),
        _i("NobelReplace Tapered", "other", "tapered", "v", "rounded", "machined",
           screwdriver=UNIGRIP, pitch=15, depth=5, collar_px=30, taper=0.72),
        _i("Brånemark System Mk III", "external_hex", "parallel", "v", "flat", "machined",
           screwdriver=UNIGRIP, pitch=12, depth=4, collar_px=16),
        _i("Brånemark System Mk IV", "external_hex", "tapered", "v", "flat", "machined",
           screwdriver=UNIGRIP, pitch=12, depth=5, collar_px=16, taper=0.85),
        _i("NobelSpeedy Groovy", "external_hex", "tapered", "v", "pointed", "machined",
           screwdriver=UNIGRIP, pitch=14, depth=6, collar_px=10, taper=0.78),
        _i("NobelSpeedy Replace", "other", "tapered", "v", "pointed", "machined",
           screwdriver=UNIGRIP, pitch=14, depth=6, collar_px=24, taper=0.78),
    ],
    "Straumann": [
        _i("Standard Plus (TL)", "morse_taper", "parallel", "square", "rounded", "machined", level="tissue",
           diameters=(3.3, 4.1, 4.8), screwdriver=SCS, pitch=20, depth=6, collar_px=10),
        _i("Standard (TL)", "morse_taper", "parallel", "square", "rounded", "machined", level="tissue",
           diameters=(3.3, 4.1, 4.8), screwdriver=SCS, pitch=20, depth=6, collar_px=30),
        _i("Tapered Effect", "morse_taper", "tapered", "square", "rounded", "machined", level="tissue",
           diameters=(3.3, 4.1, 4.8), screwdriver=SCS, pitch=20, depth=6, collar_px=20, taper=0.8),
        _i("Bone Level (BL)", "morse_taper", "parallel", "square", "flat", "rough", ps=True,
           diameters=(3.3, 4.1, 4.8), screwdriver=SCS, pitch=18, depth=6, collar_px=10),
        _i("Bone Level Tapered (BLT)", "morse_taper", "tapered", "square", "rounded", "rough", ps=True,
           diameters=(2.9, 3.3, 4.1, 4.8), screwdriver=SCS, pitch=18, depth=7, collar_px=10, taper=0.7),
        _i("BLX", "morse_taper", "tapered", "v", "pointed", "rough", ps=True,
           diameters=(3.75, 4.0, 4.5, 5.0, 5.5), screwdriver=SCS, pitch=24, depth=12, collar_px=8, taper=0.58),
        _i("TLX", "morse_taper", "tapered", "v", "pointed", "machined", level="tissue",
           diameters=(3.75, 4.5, 5.5), screwdriver=SCS, pitch=24, depth=12, collar_px=8, taper=0.6),
        _i("PURE Ceramic", "other", "parallel", "square", "rounded", "machined", level="tissue",
           diameters=(3.3, 4.1), screwdriver=SCS, pitch=18, depth=5, collar_px=30),
    ],
    "Neodent": [
        _i("Titamax CM", "morse_taper", "parallel", "v", "flat", "rough",
           diameters=(3.5, 3.75, 4.0, 5.0), screwdriver=NEO, pitch=14, depth=6, collar_px=12),
        _i("Titamax EX", "external_hex", "parallel", "v", "flat", "rough",
           diameters=(3.75, 4.0, 5.0), screwdriver=NEO_EX, pitch=14, depth=6, collar_px=12),
        _i("Titamax GM", "morse_taper", "parallel", "v", "flat", "rough", ps=True,
           diameters=(3.5, 3.75, 4.0, 5.0), screwdriver=NEO, pitch=14, depth=7, collar_px=8),
        _i("Drive CM", "morse_taper", "tapered", "v", "pointed", "rough",
           diameters=(3.5, 4.3, 5.0), screwdriver=NEO, pitch=20, depth=10, collar_px=10, taper=0.62),
        _i("Drive GM", "morse_taper", "tapered", "v", "pointed", "rough", ps=True,
           diameters=(3.5, 4.3, 5.0), screwdriver=NEO, pitch=20, depth=10, collar_px=6, taper=0.6),
        _i("Alvim CM", "morse_taper", "tapered", "buttress", "rounded", "rough",
           diameters=(3.5, 4.3, 5.0), screwdriver=NEO, pitch=16, depth=8, collar_px=10, taper=0.7),
        _i("Helix GM", "morse_taper", "tapered", "buttress", "pointed", "rough", ps=True,
           diameters=(3.5, 3.75, 4.0, 4.3, 5.0), screwdriver=NEO, pitch=22, depth=12, collar_px=6,
           taper=0.55),
        _i("Facility GM", "morse_taper", "parallel", "v", "rounded", "rough", ps=True,
           diameters=(2.9,), screwdriver=NEO, pitch=12, depth=5, collar_px=8),
    ],
    "Zimmer": [
        _i("Tapered Screw-Vent", "internal_hex", "tapered", "v", "rounded", "machined",
           diameters=(3.7, 4.1, 4.7, 6.0), screwdriver=ZIMMER_HEX, pitch=16, depth=6, collar_px=22, taper=0.74),
        _i("Screw-Vent", "internal_hex", "parallel", "v", "rounded", "machined",
           diameters=(3.7, 4.7), screwdriver=ZIMMER_HEX, pitch=14, depth=5, collar_px=22),
        _i("Trabecular Metal", "internal_hex", "tapered", "v", "rounded", "rough",
           diameters=(4.1, 4.7, 6.0), screwdriver=ZIMMER_HEX, pitch=16, depth=5, collar_px=40, taper=0.8),
        _i("Eztetic", "internal_hex", "tapered", "v", "pointed", "microthread", ps=True,
           diameters=(3.1,), screwdriver=ZIMMER_HEX, pitch=14, depth=6, collar_px=10, taper=0.75),
        _i("Spline Twist", "other", "parallel", "v", "flat", "rough",
           diameters=(3.25, 3.75, 5.0), screwdriver=ZIMMER_HEX, pitch=12, depth=5, collar_px=18),
        _i("SwissPlus", "internal_hex", "tapered", "v", "rounded", "machined", level="tissue",
           diameters=(3.7, 4.8), screwdriver=ZIMMER_HEX, pitch=16, depth=6, collar_px=14, taper=0.82),
        _i("One-Piece", "other", "tapered", "v", "pointed", "machined", level="tissue",
           diameters=(3.0, 3.7), screwdriver="— (peça única, sem parafuso protético)", pitch=14, depth=6,
           collar_px=8, taper=0.7),
        _i("T3 Tapered", "internal_hex", "tapered", "buttress", "rounded", "rough", ps=True,
           diameters=(3.25, 4.0, 5.0, 6.0), screwdriver=ZIMMER_HEX, pitch=18, depth=8, collar_px=10,
           taper=0.7),
    ],
}
