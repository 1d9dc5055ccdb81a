"""The processes the engine starts, by their BPMN process id.

The cycle's two are required in every deployable diagram. The four after
recognition (issue 16: a certificate's validity with its reminders,
re-evaluation and expiry; an upgrade; a revocation; an inspection) are
optional: a province's variant without them uses the national diagram's
(`BpmnEngine.start_lifecycle`)."""

PRODUCT_PROCESS = "ocop_product_cycle"
OUTREACH_PROCESS = "ocop_outreach"
REQUIRED_PROCESSES = (PRODUCT_PROCESS, OUTREACH_PROCESS)

CERTIFICATE_PROCESS = "ocop_certificate"
UPGRADE_PROCESS = "ocop_upgrade"
REVOCATION_PROCESS = "ocop_revocation"
INSPECTION_PROCESS = "ocop_inspection"
LIFECYCLE_PROCESSES = (CERTIFICATE_PROCESS, UPGRADE_PROCESS, REVOCATION_PROCESS, INSPECTION_PROCESS)
