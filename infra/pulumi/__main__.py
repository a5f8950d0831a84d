"""`pulumi up` in this folder: see coderemote_cloud (and `pulumi config set coderemote:cloud aws|gcp`)."""

import pulumi
from coderemote_cloud import deploy

deploy(pulumi.Config("coderemote"))
