// Tryton → CRM: the master data finance keeps too, what the invoices say,
// and finance's notes on the party.
for (const f of ["name", "phone", "email", "street", "city", "postal_code"]) {
  replica[f] = entity[f] == null ? "" : String(entity[f]);
}
replica.tax_id = entity.identifier || "";
replica.erp_code = entity.code || "";
// Present only when the Tryton system reads invoices ("invoices": true).
if ("amount_due" in entity) {
  replica.amount_due = entity.amount_due;
  replica.overdue = entity.overdue;
  replica.open_invoices = entity.open_invoices;
  replica.payment_state = entity.payment_state;
  replica.invoices = (entity.invoices || []).join("\n");
}
replica.comments = entity.comments;
