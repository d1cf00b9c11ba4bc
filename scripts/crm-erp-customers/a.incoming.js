// Apply Tryton's side to the CRM account.
if (ctx.firstSync) entity.stage = {{stage}};
for (const f of ["name", "phone", "email", "street", "city", "postal_code", "tax_id", "erp_code"]) {
  entity[f] = replica[f];
}
if ("amount_due" in replica) {
  entity.amount_due = replica.amount_due;
  entity.overdue = replica.overdue;
  entity.open_invoices = replica.open_invoices;
  entity.payment_state = replica.payment_state;
  entity.invoices = replica.invoices;
}
// Finance's notes become CRM notes; ids are kept so each is added once.
entity.comments = (replica.comments || []).map(c => ({
  id: c.id,
  author: c.author,
  body: "[ERP] " + c.author + ": " + c.body,
}));
