"""Site-wide admin settings (loaded by the admin's autodiscovery: ``raiox`` is an installed app).
The apps' ``admin.py`` modules register their models only."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

# The index template links the staff dashboard (/admin/dashboard/).
admin.site.index_template = "admin/raiox_index.html"
admin.site.site_header = _("Raiox AI — administração")
admin.site.site_title = _("Raiox AI")
