/** A button that opens a small dialog below it (the settings, the replay menu). */
export function Popover({
  label,
  testId,
  open,
  onToggle,
  children,
}: {
  label: string;
  testId: string;
  open: boolean;
  onToggle(): void;
  children: React.ReactNode;
}) {
  return (
    <span className="popover-anchor">
      <button type="button" onClick={onToggle} aria-expanded={open} data-testid={testId} className={open ? 'active' : undefined}>
        {label} ▾
      </button>
      {open && (
        <div className="popover" role="dialog" aria-label={label} data-testid={`${testId}-panel`}>
          {children}
        </div>
      )}
    </span>
  );
}
