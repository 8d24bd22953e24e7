"""The CDK app of the AWS deployment (`python -m infra`, or `cdk synth` from this folder).

Importing the package sets two jsii/CDK switches before `aws_cdk` is first imported: silence the
end-of-life warning for node 20 and skip the CDK's schema validation (about 10 s per synth). Both are
defaults only; the environment wins.
"""

from __future__ import annotations

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("CDK_VALIDATION", "false")
